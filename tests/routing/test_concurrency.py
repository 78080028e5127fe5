"""The adaptive concurrency limiter: queueing, fast 429s, and AIMD."""

from __future__ import annotations

import asyncio

import pytest

from interlock.errors import RateLimited
from interlock.routing.concurrency import ConcurrencyLimiter, LimiterPolicy


async def test_over_the_limit_waits_then_gets_the_freed_slot() -> None:
    limiter = ConcurrencyLimiter("d", LimiterPolicy(initial_limit=1, adaptive=False, max_wait_s=5))
    await limiter.acquire()
    waiter = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    assert limiter.queued == 1 and not waiter.done()
    limiter.release()
    await waiter
    assert limiter.in_flight == 1 and limiter.queued == 0


async def test_full_queue_is_a_fast_429() -> None:
    limiter = ConcurrencyLimiter("d", LimiterPolicy(initial_limit=1, queue_size=0, adaptive=False))
    await limiter.acquire()
    with pytest.raises(RateLimited) as caught:
        await limiter.acquire()
    assert caught.value.retry_after is not None and caught.value.status == 429
    assert limiter.rejected == 1


async def test_waiting_too_long_is_a_429() -> None:
    limiter = ConcurrencyLimiter("d", LimiterPolicy(initial_limit=1, max_wait_s=0.01, adaptive=False))
    await limiter.acquire()
    with pytest.raises(RateLimited, match="no slot freed in time"):
        await limiter.acquire()
    assert limiter.queued == 0


async def test_cancelled_waiter_leaves_the_queue() -> None:
    limiter = ConcurrencyLimiter("d", LimiterPolicy(initial_limit=1, adaptive=False))
    await limiter.acquire()
    waiter = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert limiter.queued == 0
    limiter.release()
    assert limiter.in_flight == 0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_aimd_grows_when_fast_and_shrinks_when_slow() -> None:
    clock = Clock()
    limiter = ConcurrencyLimiter("d", LimiterPolicy(initial_limit=4, max_limit=100, tolerance=2.0), clock)
    for _ in range(40):  # saturated and fast: grows
        for _ in range(int(limiter.limit)):
            await limiter.acquire()
        for _ in range(int(limiter.in_flight)):
            clock.now += 0.01
            limiter.release(ttft_s=0.1)
    grown = limiter.limit
    assert grown > 4
    for _ in range(10):  # slow answers: shrinks
        await limiter.acquire()
        clock.now += 1.0
        limiter.release(ttft_s=1.0)
    assert limiter.limit < grown
    await limiter.acquire()
    clock.now += 1.0
    limiter.release(overloaded=True)
    assert limiter.limit >= limiter.policy.min_limit
