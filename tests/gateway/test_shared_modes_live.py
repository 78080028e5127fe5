"""A deployment disabled through one gateway is disabled in every gateway sharing its state."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from interlock.sim import SimServerThread
from tests.conftest import FAST_SIM
from tests.gateway_harness import MASTER_KEY, Gateway, running_gateway
from tests.redis_server import REDIS_HOST, REDIS_PORT, find_redis

CONFIG = """
master_key: {master}
store: sqlite:///{tmp}/{name}.db
{extra}
providers:
  a: {{kind: openai, base_url: {a}}}
  b: {{kind: openai, base_url: {b}}}
models:
  chat:
    deployments:
      - {{provider: a, model: sim-small}}
      - {{provider: b, model: sim-small}}
"""
HELLO = [{"role": "user", "content": "hi"}]
DISABLED = "chat/a/sim-small#0"


@pytest.fixture
def sims() -> Iterator[tuple[SimServerThread, SimServerThread]]:
    with SimServerThread(FAST_SIM) as a, SimServerThread(FAST_SIM) as b:
        yield a, b


def served_by(gateway: Gateway, count: int = 12) -> set[str]:
    client = gateway.openai()
    return {
        client.chat.completions.with_raw_response.create(model="chat", messages=HELLO, max_tokens=3).headers[
            "x-interlock-deployment"
        ]
        for _ in range(count)
    }


def eventually(check: object, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("shared", ["redis", "sqlite"])
def test_disable_and_drain_reach_the_other_gateway(
    shared: str, sims: tuple[SimServerThread, SimServerThread], tmp_path: Path
) -> None:
    if shared == "redis":
        if (reason := find_redis()) is not None:
            pytest.skip(reason)
        extra = f"redis: {{url: 'redis://{REDIS_HOST}:{REDIS_PORT}/0', prefix: 'it-{secrets.token_hex(4)}:'}}"
    else:  # two workers of one instance, no Redis: a SQLite file beside the counters
        extra = f"server: {{workers: 2}}\nlimits: {{local_counters_file: '{tmp_path}/counters.db'}}"
    a, b = sims
    texts = [
        CONFIG.format(master=MASTER_KEY, tmp=tmp_path, name=name, extra=extra, a=a.base_url, b=b.base_url)
        for name in ("one", "two")
    ]
    with running_gateway(texts[0]) as one, running_gateway(texts[1]) as two:
        assert served_by(two) == {DISABLED, "chat/b/sim-small#1"}
        with one.admin() as admin:
            answer = admin.post(f"/admin/deployments/{quote(DISABLED)}/disable").json()
        assert answer["mode"] == "disabled" and answer["audited"] is True
        assert eventually(lambda: DISABLED in two.runtime.routing.disabled)
        assert served_by(two) == {"chat/b/sim-small#1"}
        with two.admin() as admin:
            admin.post(f"/admin/deployments/{quote(DISABLED)}/drain").raise_for_status()
            admin.post(f"/admin/deployments/{quote(DISABLED)}/enable").raise_for_status()
        assert eventually(lambda: DISABLED not in one.runtime.routing.disabled)
        assert DISABLED in served_by(one)
