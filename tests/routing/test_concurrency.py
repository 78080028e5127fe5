"""The adaptive concurrency limiter: queueing, fast 429s, and AIMD."""

from __future__ import annotations

import asyncio

import pytest

from interlock.core.errors import RateLimited
from interlock.routing.concurrency import ConcurrencyLimiter, LimiterPolicy
from interlock.routing.latency import Judgement, LatencyKind, LatencyModel, LatencySample


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


def judged(model: LatencyModel, kind: LatencyKind, seconds: float, size: int) -> Judgement:
    return model.judge(LatencySample(kind, seconds, size))


async def fill(limiter: ConcurrencyLimiter) -> None:
    while limiter.has_room():
        await limiter.acquire()


async def test_slow_start_grows_the_limit_while_calls_stay_fast() -> None:
    clock = Clock()
    model = LatencyModel(clock=clock)
    limiter = ConcurrencyLimiter("d", LimiterPolicy(initial_limit=4, max_limit=100), clock)
    for _ in range(60):  # more demand than the limit: each finished call is replaced at once
        await fill(limiter)
        clock.now += 0.01
        limiter.release(judged(model, "first_token", 0.02, 100))
    assert limiter.limit == 64  # one more slot for each call that finished at its best
    assert limiter.decreases == 0


async def test_long_answers_never_shrink_the_limit() -> None:
    """The regression this limiter exists for: a complete answer's whole duration next to streams'
    first tokens read as permanent overload and shrank the limit to its floor."""
    clock = Clock()
    model = LatencyModel(clock=clock)
    limiter = ConcurrencyLimiter("d", LimiterPolicy(initial_limit=8, max_limit=64), clock)
    for round_ in range(50):
        await fill(limiter)
        for i in range(limiter.in_flight):
            clock.now += 0.005
            if i % 2:
                sample = judged(model, "first_token", 0.02, 50)  # streams: 20 ms to first token
            else:  # complete answers from 4 to 500 tokens at 10 ms a token
                tokens = (4, 40, 500)[(round_ + i) % 3]
                sample = judged(model, "answer", 0.02 + tokens * 0.01, tokens)
            limiter.release(sample)
    assert limiter.decreases == 0
    assert limiter.limit == 64


async def test_queueing_in_the_upstream_shrinks_the_limit_to_what_was_in_flight() -> None:
    clock = Clock()
    model = LatencyModel(clock=clock)
    limiter = ConcurrencyLimiter("d", LimiterPolicy(initial_limit=100, max_limit=100), clock)
    for _ in range(20):  # a healthy baseline
        await limiter.acquire()
        clock.now += 0.01
        limiter.release(judged(model, "first_token", 0.02, 50))
    await fill(limiter)
    for _ in range(10):  # then first tokens come 10x later: the upstream is queueing
        clock.now += 0.3
        limiter.release(judged(model, "first_token", 0.2, 50))
    assert limiter.decreases >= 2
    assert limiter.limit < 90 * 0.9 + 1e-9  # the first cut alone takes 10 %
    assert limiter.limit >= limiter.policy.min_limit


async def test_overload_answers_shrink_it_at_most_once_per_latency() -> None:
    clock = Clock()
    limiter = ConcurrencyLimiter("d", LimiterPolicy(initial_limit=40, max_limit=40), clock)
    await fill(limiter)
    for _ in range(5):  # five 429s at the same moment: one decrease
        limiter.release(overloaded=True)
    assert limiter.decreases == 1 and limiter.limit == pytest.approx(36.0)
    clock.now += 0.1  # within the quiet spell after a cut (at least 250 ms)
    limiter.release(overloaded=True)
    assert limiter.decreases == 1
    clock.now += 0.2
    limiter.release(overloaded=True)
    assert limiter.decreases == 2


async def test_the_queue_is_bounded_by_the_limit() -> None:
    limiter = ConcurrencyLimiter(
        "d", LimiterPolicy(initial_limit=4, queue_ratio=0.5, adaptive=False, max_wait_s=5)
    )
    await fill(limiter)
    waiters = [asyncio.create_task(limiter.acquire()) for _ in range(2)]
    await asyncio.sleep(0)
    assert limiter.queued == 2 and limiter.queue_room() == 0
    with pytest.raises(RateLimited, match="queue is full"):
        await limiter.acquire()
    for _ in range(2):
        limiter.release()
    await asyncio.gather(*waiters)
    assert limiter.queued == 0 and limiter.in_flight == 4


def test_a_jitter_of_a_millisecond_is_not_overload() -> None:
    clock = Clock()
    model = LatencyModel(clock=clock)
    limiter = ConcurrencyLimiter("d", LimiterPolicy(), clock)
    for _ in range(10):
        clock.now += 0.01
        judged(model, "first_token", 0.0003, 10)
    verdict = judged(model, "first_token", 0.003, 10)  # 10x, but 3 ms
    assert verdict.ratio is not None and verdict.ratio > 2
    assert not limiter.is_slow(verdict)


def test_expectations_for_unmeasured_sizes_come_from_the_nearest_measured_one() -> None:
    clock = Clock()
    model = LatencyModel(clock=clock)
    for _ in range(5):  # answers of 40 tokens at 10 ms a token
        judged(model, "answer", 41 * 0.01, 40)
    assert model.recent("answer", 40) == pytest.approx(0.41)
    assert model.recent("answer", 400) == pytest.approx(4.01)  # per token, from the 40-token class
    longest = model.recent("answer", None)  # no max_tokens: the longest class seen, at its top
    assert longest is not None and longest >= 0.41
    assert model.recent("first_token", 10) is None  # nothing of that kind yet


async def test_while_refusing_it_holds_admitted_calls_to_the_shed_tolerance() -> None:
    clock = Clock()
    model = LatencyModel(clock=clock)
    limiter = ConcurrencyLimiter(
        "d", LimiterPolicy(initial_limit=2, max_limit=2, queue_size=0, answer_tolerance=2.5), clock
    )
    for _ in range(5):
        clock.now += 0.01
        judged(model, "answer", 0.5, 49)  # 10 ms a token at best
    twice = judged(model, "answer", 2.5, 49)  # the class's average climbs to 2x its best
    assert twice.ratio is not None and 1.8 < twice.ratio < 2.5
    assert not limiter.is_slow(twice)  # busy, not overloaded: answers may slow as the engine batches
    await fill(limiter)
    with pytest.raises(RateLimited):
        await limiter.acquire()  # a refusal: the limiter is shedding load now
    assert limiter.is_slow(twice)  # so it keeps what it admits within 1.8x of the best
