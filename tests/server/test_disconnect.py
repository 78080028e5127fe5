"""A client that goes away cancels its upstream request, streaming or not."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from interlock.sim import SimServerThread
from tests.gateway_harness import Gateway, slow_stream


def sim_stats(sim: SimServerThread) -> dict[str, Any]:
    return httpx.get(sim.url + "/sim/stats").json()  # type: ignore[no-any-return]


def wait_for(predicate: Any, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_stream_disconnect_cancels_upstream(gateway: Gateway, sim: SimServerThread) -> None:
    with slow_stream(gateway, sim.url, max_tokens=500) as lines:
        received = [next(lines) for _ in range(4)]
    assert any(line.startswith("data: ") for line in received)
    assert wait_for(lambda: sim_stats(sim)["cancelled"] >= 1), sim_stats(sim)
    assert wait_for(lambda: sim_stats(sim)["in_flight"] == 0), sim_stats(sim)


def test_non_streaming_disconnect_cancels_upstream(gateway: Gateway, sim: SimServerThread) -> None:
    httpx.post(sim.url + "/sim/faults", json={"latency_ms": 5000})
    body = {"model": "chat", "messages": [{"role": "user", "content": "slow"}]}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            gateway.base_url + "/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {gateway.master_key}"},
            timeout=httpx.Timeout(10, read=0.5),
        )
    assert wait_for(lambda: sim_stats(sim)["cancelled"] >= 1), sim_stats(sim)
