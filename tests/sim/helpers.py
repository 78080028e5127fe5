"""Helpers shared by the simulator's tests."""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from typing import Any

import httpx
import openai

from interlock.sim import SimConfig, SimServerThread

#: A simulator that answers at once: tests of behaviour don't need realistic timing.
INSTANT = SimConfig(ttft_ms=0, prefill_ms_per_token=0, tpot_ms=0)
#: One TLS context for every client: building one per client (loading the CA bundle) costs ~50 ms,
#: more than most of these tests, and the simulator is plain HTTP anyway.
TLS = ssl.create_default_context()


def get(url: str, **options: Any) -> httpx.Response:
    """``GET`` with the shared TLS context."""
    return httpx.get(url, verify=TLS, **options)


def post(url: str, **options: Any) -> httpx.Response:
    """``POST`` with the shared TLS context."""
    return httpx.post(url, verify=TLS, **options)


def delete(url: str, **options: Any) -> httpx.Response:
    """``DELETE`` with the shared TLS context."""
    return httpx.delete(url, verify=TLS, **options)


def sdk(base_url: str, api_key: str = "x", **options: Any) -> openai.OpenAI:
    """The official SDK on ``base_url``, without retries so every request reaches the simulator once."""
    return openai.OpenAI(
        base_url=base_url, api_key=api_key, max_retries=0, http_client=httpx.Client(verify=TLS), **options
    )


def stats(sim: SimServerThread) -> dict[str, Any]:
    """The simulator's ``/sim/stats``."""
    data: dict[str, Any] = get(sim.url + "/sim/stats").json()
    return data


def wait_for_stats(
    sim: SimServerThread, check: Callable[[dict[str, Any]], bool], timeout: float = 5
) -> dict[str, Any]:
    """Poll ``/sim/stats`` until ``check`` holds (the server side of an event may lag the client)."""
    deadline = time.monotonic() + timeout
    while True:
        current = stats(sim)
        if check(current) or time.monotonic() > deadline:
            return current
        time.sleep(0.01)


def chat_body(content: str = "Hello there", **extra: Any) -> dict[str, Any]:
    """A minimal chat completions body."""
    return {"model": "sim-small", "messages": [{"role": "user", "content": content}], **extra}
