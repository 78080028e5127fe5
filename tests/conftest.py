"""Shared fixtures: a simulator and a gateway in front of it, over real loopback HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from interlock.sim import SimConfig, SimServerThread
from tests.gateway_harness import Gateway, running_gateway, simple_config
from tests.postgres import PG_HOST, PG_PORT, PostgresServer, find_postgres, run_private

FAST_SIM = SimConfig(ttft_ms=1, tpot_ms=0.2, prefill_ms_per_token=0.0, seed=7)


@pytest.fixture
def sim() -> Iterator[SimServerThread]:
    """A fresh simulator per test, so faults set by one test never leak into another."""
    with SimServerThread(FAST_SIM) as server:
        yield server


@pytest.fixture
def gateway(sim: SimServerThread, tmp_path: Path) -> Iterator[Gateway]:
    """A gateway with models ``chat`` and ``embed`` served by ``sim``."""
    with running_gateway(simple_config({"sim-a": sim.base_url}, tmp_path)) as gw:
        yield gw


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """The PostgreSQL server with a fresh database for this session (or a skip reason)."""
    user, errors = run_private(find_postgres())
    if user is None:
        reason = f"PostgreSQL at {PG_HOST}:{PG_PORT} is unreachable ({errors}); start it with .ci/run"
        yield PostgresServer(None, None, reason)
        return
    server = PostgresServer(user, None, None)
    name = run_private(server.create_database())
    server = PostgresServer(user, name, None)
    try:
        yield server
    finally:
        run_private(server.drop_database(name))
