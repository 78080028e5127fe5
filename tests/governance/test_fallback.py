"""Redis unreachable: per-process shares of every limit, one log line, a metric, a readiness flag;
back to Redis, with the outage's spend written back, once it answers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from interlock.governance.counters import NO_RESERVATION, BucketLine, BudgetLine, BudgetUsage, LeaseLine
from interlock.governance.fallback import FallbackCounters
from interlock.governance.health import SharedStateHealth, SharedStateMetrics
from interlock.governance.redis_counters import RedisCounters
from interlock.server.thread import free_port
from tests.redis_server import REDIS_HOST, REDIS_PORT
from tests.tcp_proxy import TcpProxy

T0 = 1_717_000_000_000
BUDGET = BudgetLine("budget:f:b", 100, None, (70,))
RPM = BucketLine("rate:f:requests", 40, 60_000, 1)
SLOTS = LeaseLine("conc:f", 8, 60_000)


def fallback(port: int, prefix: str, share: float) -> FallbackCounters:
    url = f"redis://127.0.0.1:{port}/0"
    redis = RedisCounters.from_url(url, prefix=prefix, timeout_s=1, connect_timeout_s=1)
    return FallbackCounters(
        redis, SharedStateHealth("redis", lambda: 0.0), share=share, retry_interval_s=0.02
    )


async def wait_for(condition: object, what: str) -> None:
    for _ in range(500):  # a bound so that a broken reconnect fails the test instead of hanging it
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


@pytest.fixture
async def dead(prefix: str) -> AsyncIterator[FallbackCounters]:
    """Counters whose Redis port has nothing listening."""
    counters = fallback(free_port(), prefix, share=0.25)
    yield counters
    await counters.aclose()


async def test_unreachable_at_start_means_a_quarter_of_each_limit(
    dead: FallbackCounters, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="interlock.governance.fallback")
    await dead.start()
    assert dead.health.degraded and not dead.health.ready
    assert dead.health.check() == (False, "degraded: Redis unreachable, limits counted per process")
    admitted = [(await dead.acquire([RPM], [], f"l{i}", T0)).granted for i in range(20)]
    assert sum(admitted) == 10  # 40 a minute shared by 4 processes
    slots = [(await dead.acquire([], [SLOTS], f"s{i}", T0)).granted for i in range(5)]
    assert sum(slots) == 2
    granted = [(await dead.reserve([BUDGET], f"r{i}", 10, T0, 1000)).granted for i in range(5)]
    assert sum(granted) == 2  # never heard of the budget: a quarter of its whole limit (25)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "1/4" in warnings[0].getMessage()
    assert dead.health.outages == 1 and dead.health.fallback_calls == 30


async def test_the_metric_follows_the_flag(dead: FallbackCounters) -> None:
    registry = CollectorRegistry()
    registry.register(SharedStateMetrics(dead.health))
    assert 'interlock_shared_state_degraded{backend="redis"} 0.0' in generate_latest(registry).decode()
    await dead.acquire([RPM], [], "l", T0)
    text = generate_latest(registry).decode()
    assert 'interlock_shared_state_degraded{backend="redis"} 1.0' in text
    assert "interlock_shared_state_outages_total 1.0" in text
    assert "interlock_shared_state_fallback_calls_total 1.0" in text


async def test_cut_mid_run_then_back(redis_url: str, prefix: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="interlock.governance.fallback")
    port = free_port()
    counters = fallback(port, prefix, share=0.5)
    direct = RedisCounters.from_url(redis_url, prefix=prefix)
    try:
        with TcpProxy(REDIS_HOST, REDIS_PORT, port=port) as proxy:
            await counters.start()
            assert (await counters.reserve([BUDGET], "shared-1", 60, T0, 60_000)).granted
            assert (await counters.acquire([RPM], [], "l0", T0)).granted
            proxy.cut()

            # the Redis reservation of 60 is held; half of the 40 left is this process's share
            assert not counters.health.degraded
            assert (await counters.reserve([BUDGET], "local-1", 20, T0, 60_000)).granted
            assert counters.health.degraded
            assert not (await counters.reserve([BUDGET], "local-2", 1, T0, 60_000)).granted
            # spend settled while Redis is away is owed to it: the shared reservation's and the local one's
            assert (await counters.settle([BUDGET], "shared-1", 50, T0)).crossed == ((),)
            await counters.settle([BUDGET], "local-1", 15, T0)
            assert sum([(await counters.acquire([RPM], [], f"l{i}", T0)).granted for i in range(30)]) == 20

        with TcpProxy(REDIS_HOST, REDIS_PORT, port=port):  # Redis answers again
            await wait_for(lambda: counters.health.ready, "back on Redis")
            # the shared reservation lapses by itself (its expiry); the spend came back in full
            assert await direct.usage([BUDGET], T0 + 60_000) == (BudgetUsage(65, 0),)
            # and counting is shared again, thresholds included
            assert (await counters.settle([BUDGET], NO_RESERVATION, 5, T0 + 60_000)).crossed == ((70,),)
            await counters.aclose()
        assert counters.health.outages == 1
        messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(messages) == 2 and "reachable again" in messages[1]
    finally:
        await direct.aclose()
