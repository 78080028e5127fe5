"""Routing decisions as recorded with each request: every deployment's verdict, the scores, the pick,
and which attempt each pick led to — over real loopback HTTP."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from interlock.server.thread import free_port
from interlock.sim import SimServerThread
from tests.gateway_harness import MASTER_KEY, Gateway, running_gateway

MESSAGES = [{"role": "user", "content": "hello"}]
DEAD, LIVE, SPARE, CPU = "chat/dead/m#0", "chat/live/m#1", "chat/live/m#2", "chat/live/m#3"


def config(tmp: Path, dead: str, live: str, strategy: str) -> str:
    return f"""
master_key: {MASTER_KEY}
store: sqlite:///{tmp}/interlock.db
providers:
  dead: {{kind: openai, base_url: {dead}}}
  live: {{kind: openai, base_url: {live}}}
pools:
  gpu: {{labels: {{hardware: gpu}}}}
  cpu: {{labels: {{hardware: cpu}}}}
models:
  chat:
    routing: {{strategy: {strategy}}}
    retry: {{base_delay_ms: 1}}
    deployments:
      - {{provider: dead, model: m, pool: gpu}}
      - {{provider: live, model: m, pool: gpu, price: {{input: 2.0, output: 4.0}}}}
      - {{provider: live, model: m, pool: gpu}}
      - {{provider: live, model: m, pool: cpu}}
"""


def send(gateway: Gateway) -> str:
    response = httpx.post(
        gateway.base_url + "/chat/completions",
        json={"model": "chat", "messages": MESSAGES},
        headers={"Authorization": f"Bearer {MASTER_KEY}", "x-interlock-pool": "gpu"},
    )
    assert response.status_code == 200, response.text
    return response.headers["x-request-id"]


def record(gateway: Gateway, request_id: str) -> dict[str, Any]:
    with gateway.admin() as admin:
        deadline = time.monotonic() + 10
        while True:
            response = admin.get(f"/admin/requests/{request_id}")
            if response.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    response.raise_for_status()
    found: dict[str, Any] = response.json()
    return found


def verdicts(decision: dict[str, Any]) -> dict[str, str]:
    return {c["deployment"]: c["verdict"] for c in decision["candidates"]}


def test_each_pick_records_why_every_deployment_was_or_was_not_chosen(
    sim: SimServerThread, tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with running_gateway(config(tmp_path, dead, sim.base_url, "round-robin")) as gw:
        with gw.admin() as admin:
            admin.post(f"/admin/deployments/{quote(SPARE)}/disable").raise_for_status()
        first = record(gw, send(gw))
        second = record(gw, send(gw))

    # round robin starts with the first deployment: the dead one; the retry goes to the live one
    assert [a["deployment"] for a in first["attempts"]] == [DEAD, LIVE]
    one, two = first["decisions"]
    assert (one["model"], one["strategy"], one["pick"], one["attempt"]) == ("chat", "round-robin", DEAD, 0)
    assert verdicts(one) == {DEAD: "picked", LIVE: "eligible", SPARE: "disabled", CPU: "constraint"}
    assert all(c["score"] is None for c in one["candidates"])  # round robin ranks nothing
    assert (two["pick"], two["attempt"]) == (LIVE, 1)
    assert verdicts(two) == {DEAD: "tried", LIVE: "picked", SPARE: "disabled", CPU: "constraint"}

    # a refused connection opens the breaker at once: the next request does not consider it
    (only,) = second["decisions"]
    assert verdicts(only) == {DEAD: "breaker_open", LIVE: "picked", SPARE: "disabled", CPU: "constraint"}


def test_scores_are_what_the_strategy_ranks_by(sim: SimServerThread, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with running_gateway(config(tmp_path, dead, sim.base_url, "cost")) as gw:
        with gw.admin() as admin:
            for deployment in (DEAD, SPARE):
                admin.post(f"/admin/deployments/{quote(deployment)}/disable").raise_for_status()
        (decision,) = record(gw, send(gw))["decisions"]
    scores = {c["deployment"]: c["score"] for c in decision["candidates"]}
    # the blended price (3 parts input to 1 part output) of the only gpu deployment left
    assert decision["pick"] == LIVE and scores[LIVE] == 2.5
    assert scores[DEAD] is None and scores[CPU] is None  # not candidates: no score
