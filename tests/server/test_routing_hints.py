"""The headers that steer routing are read at the edge: a model that routes by session reads its
configured session header there (any case), and requests of one session stay on one deployment."""

from __future__ import annotations

from pathlib import Path

import httpx

from interlock.sim import SimServerThread
from tests.gateway_harness import running_gateway, simple_config

STICKY = """
  sticky:
    routing: {strategy: session, session_header: X-Conversation}
    deployments:
      - {provider: a, model: sim-small}
      - {provider: b, model: sim-small}
"""


def test_a_session_stays_on_one_deployment(sim: SimServerThread, tmp_path: Path) -> None:
    config = simple_config({"a": sim.base_url, "b": sim.base_url}, tmp_path, STICKY)
    with running_gateway(config) as gateway:
        auth = {"Authorization": f"Bearer {gateway.master_key}"}
        body = {"model": "sticky", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}

        def answered_by(session: str) -> str:
            headers = {**auth, "x-conversation": session}
            response = httpx.post(gateway.base_url + "/chat/completions", json=body, headers=headers)
            assert response.status_code == 200, response.text
            return response.headers["x-interlock-deployment"]

        homes = {session: answered_by(session) for session in map(str, range(16))}
        assert all(answered_by(session) == home for session, home in homes.items())
        assert len(set(homes.values())) == 2  # sessions spread; each one sticks
