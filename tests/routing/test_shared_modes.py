"""Deployment modes set through one process reach the others at their next poll."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from interlock.routing.shared_modes import (
    DeploymentMode,
    MemoryModeStore,
    ModeStore,
    RedisModeStore,
    SharedModes,
    SqliteModeStore,
)
from interlock.server.thread import free_port
from tests.redis_server import REDIS_HOST, REDIS_PORT, find_redis

REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


class Routing:
    """What the gateway's routing state keeps: the deployments out of rotation."""

    def __init__(self) -> None:
        self.disabled: set[str] = set()

    def apply(self, modes: Mapping[str, DeploymentMode]) -> None:
        self.disabled = {d for d, mode in modes.items() if mode != "enabled"}


@pytest.fixture(params=["sqlite", "redis"])
async def open_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Callable[[], ModeStore]]:
    """Opens one process's store over the place every process shares."""
    if request.param == "sqlite":
        yield lambda: SqliteModeStore(tmp_path / "modes.db")
        return
    reason = find_redis()
    if reason:
        pytest.skip(reason)
    prefix = f"interlock-test:{secrets.token_hex(4)}:"
    yield lambda: RedisModeStore(aioredis.Redis.from_url(REDIS_URL, decode_responses=True), prefix)
    cleanup = aioredis.Redis.from_url(REDIS_URL)
    await cleanup.delete(f"{prefix}deployments:modes", f"{prefix}deployments:revision")
    await cleanup.aclose()


async def test_a_change_in_one_process_reaches_the_others(open_store: Callable[[], ModeStore]) -> None:
    here, there = Routing(), Routing()
    one = SharedModes(open_store(), here.apply, poll_interval_s=3600)  # polled by hand below
    other = SharedModes(open_store(), there.apply, poll_interval_s=3600)
    await one.start()
    await other.start()
    try:
        await one.set("chat/0", "disabled")
        await one.set("chat/1", "draining")
        assert here.disabled == {"chat/0", "chat/1"}  # at once where it was set
        assert there.disabled == set()
        await other.refresh()
        assert there.disabled == {"chat/0", "chat/1"} and other.modes["chat/1"] == "draining"
        await other.set("chat/0", "enabled")
        await one.refresh()
        assert here.disabled == {"chat/1"}
        late = Routing()  # a process that starts later begins with the shared modes
        third = SharedModes(open_store(), late.apply)
        await third.start()
        await third.stop()
        assert late.disabled == {"chat/1"}
    finally:
        await one.stop()
        await other.stop()


async def test_the_poll_task_applies_changes_made_elsewhere() -> None:
    store = MemoryModeStore()
    seen = Routing()
    modes = SharedModes(store, seen.apply, poll_interval_s=0.01)
    await modes.start()
    try:
        await store.put("chat/0", "disabled")
        for _ in range(500):  # a bound, so that a dead poll task fails the test instead of hanging it
            if seen.disabled:
                break
            await asyncio.sleep(0.01)
        assert seen.disabled == {"chat/0"}
    finally:
        await modes.stop()


async def test_an_unreachable_store_keeps_the_last_modes_and_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="interlock.routing.shared_modes")
    client = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    seen = Routing()
    seen.disabled = {"chat/0"}
    modes = SharedModes(RedisModeStore(client, "x:"), seen.apply, poll_interval_s=3600)
    for _ in range(3):
        await modes.refresh()
    assert seen.disabled == {"chat/0"}
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and "the shared store failed (Redis: ConnectionError)" in messages[0]
    await modes.stop()
