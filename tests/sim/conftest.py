"""Fixtures for the simulator's tests: simulators on loopback ports, and clients pointed at them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest

from interlock.sim import SimServerThread

from .helpers import INSTANT, TLS, sdk

StartSim = Callable[..., SimServerThread]


@pytest.fixture
def start_sim() -> Iterator[StartSim]:
    """Start simulators with settings changed from ``INSTANT``; all are stopped after the test."""
    running: list[SimServerThread] = []

    def start(**changes: Any) -> SimServerThread:
        sim = SimServerThread(INSTANT, **changes)
        sim.start()
        running.append(sim)
        return sim

    yield start
    for sim in running:
        sim.stop()


@pytest.fixture
def sim(start_sim: StartSim) -> SimServerThread:
    """One instant simulator."""
    return start_sim()


@pytest.fixture
def client(sim: SimServerThread) -> Iterator[openai.OpenAI]:
    """The official SDK pointed at ``sim``, without retries so every request reaches it once."""
    with sdk(sim.base_url) as api:
        yield api


@pytest.fixture
def http(sim: SimServerThread) -> Iterator[httpx.Client]:
    """A raw HTTP client on ``sim``'s root URL."""
    with httpx.Client(verify=TLS, base_url=sim.url, timeout=10) as raw:
        yield raw
