"""Counter backends for the governance tests: every semantic test runs over each of them."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from interlock.governance.counters import Counters
from interlock.governance.local_counters import LocalCounters, MemoryStore
from interlock.governance.redis_counters import RedisCounters
from interlock.governance.sqlite_store import SqliteStore
from tests.redis_server import REDIS_HOST, REDIS_PORT, find_redis

REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


@pytest.fixture(scope="session")
def redis_skip_reason() -> str | None:
    return find_redis()


@pytest.fixture
def redis_url(redis_skip_reason: str | None) -> str:
    if redis_skip_reason is not None:
        pytest.skip(redis_skip_reason)
    return REDIS_URL


@pytest.fixture
def prefix() -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    value = f"interlock-test:{secrets.token_hex(4)}:"
    yield value
    if find_redis() is None:
        import redis

        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
        try:
            keys = list(client.scan_iter(match=value + "*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


async def open_counters(kind: str, *, tmp_path: Path, prefix: str) -> Counters:
    if kind == "memory":
        return LocalCounters(MemoryStore())
    if kind == "sqlite":
        return LocalCounters(SqliteStore(tmp_path / "counters.db"))
    counters = RedisCounters.from_url(REDIS_URL, prefix=prefix, timeout_s=5.0, connect_timeout_s=5.0)
    await counters.load_scripts()
    return counters


BACKENDS = ["memory", "sqlite", "redis"]
SHARED_BACKENDS = ["sqlite", "redis"]
"""The backends that several processes can share."""


@pytest.fixture(params=BACKENDS)
async def counters(
    request: pytest.FixtureRequest, tmp_path: Path, prefix: str, redis_skip_reason: str | None
) -> AsyncIterator[Counters]:
    if request.param == "redis" and redis_skip_reason is not None:
        pytest.skip(redis_skip_reason)
    opened = await open_counters(request.param, tmp_path=tmp_path, prefix=prefix)
    try:
        yield opened
    finally:
        await opened.aclose()


@pytest.fixture
async def raw_redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()
