"""The limiter's line: round robin between keys, the flooding key refused first, batch behind."""

from __future__ import annotations

import asyncio

import pytest

from interlock.core.context import Priority
from interlock.core.errors import RateLimited
from interlock.routing.concurrency import ConcurrencyLimiter, LimiterPolicy
from interlock.routing.fair_queue import FairQueue


def _futures(count: int) -> list[asyncio.Future[None]]:
    loop = asyncio.get_running_loop()
    return [loop.create_future() for _ in range(count)]


async def test_among_keys_holding_no_slot_the_turn_goes_round_robin() -> None:
    line = FairQueue()
    heavy, light = _futures(4), _futures(2)
    for f in heavy:
        line.push("interactive", "heavy", f)
    for f in light:
        line.push("interactive", "light", f)
    order = [line.pop() for _ in range(6)]
    assert order == [
        (heavy[0], "heavy"),
        (light[0], "light"),
        (heavy[1], "heavy"),
        (light[1], "light"),
        (heavy[2], "heavy"),
        (heavy[3], "heavy"),
    ]
    assert line.pop() is None and len(line) == 0


async def test_interactive_waiters_leave_before_batch_waiters() -> None:
    line = FairQueue()
    batch, interactive = _futures(2), _futures(1)
    for f in batch:
        line.push("batch", "nightly", f)
    line.push("interactive", "app", interactive[0])
    assert line.pop() == (interactive[0], "app")
    assert line.pop(("interactive",)) is None  # batch waiters stay when only interactive may go
    assert line.pop() == (batch[0], "nightly")


async def test_a_full_line_takes_the_place_of_the_heaviest_keys_newest() -> None:
    line = FairQueue()
    heavy = _futures(3)
    for f in heavy:
        line.push("interactive", "heavy", f)
    line.push("interactive", "light", _futures(1)[0])
    assert line.make_room_for("interactive", "light") is heavy[2]
    assert line.waiting("interactive") == 3
    # the heavy key itself, or a key as heavy, is refused instead
    assert line.make_room_for("interactive", "heavy") is None
    line.push("interactive", "light", _futures(1)[0])
    assert line.make_room_for("interactive", "light") is None  # heavy 2, light 2: even


async def test_an_interactive_newcomer_takes_a_batch_place_first() -> None:
    line = FairQueue()
    batch = _futures(1)[0]
    line.push("batch", "nightly", batch)
    line.push("interactive", "app", _futures(1)[0])
    assert line.make_room_for("interactive", "app") is batch
    assert line.make_room_for("batch", "nightly") is None


async def test_removing_a_waiter_that_left_is_harmless() -> None:
    line = FairQueue()
    f = _futures(1)[0]
    line.push("interactive", "k", f)
    line.remove("interactive", "k", f)
    line.remove("interactive", "k", f)
    line.remove("batch", "other", f)
    assert len(line) == 0 and line.waiting("interactive") == 0


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def _limiter(limit: int, queue: int, **extra: float) -> ConcurrencyLimiter:
    policy = LimiterPolicy(
        initial_limit=limit, adaptive=False, queue_size=queue, queue_ratio=1.0, max_wait_s=5, **extra
    )
    return ConcurrencyLimiter("d", policy)


async def _take(limiter: ConcurrencyLimiter, tenant: str, priority: Priority = "interactive") -> str:
    await limiter.acquire(tenant, priority)
    return tenant


async def test_a_flooding_key_gets_the_429s_and_the_light_key_the_next_slot() -> None:
    limiter = _limiter(limit=2, queue=2)
    await limiter.acquire("flood")
    await limiter.acquire("flood")
    flood = [asyncio.create_task(_take(limiter, "flood")) for _ in range(2)]
    await asyncio.sleep(0)
    assert limiter.queued == 2
    light = asyncio.create_task(_take(limiter, "light"))
    await asyncio.sleep(0)
    # the line was full: the flooding key's newest place went to the light key
    with pytest.raises(RateLimited, match="queue is full"):
        await flood[1]
    assert limiter.queued == 2 and limiter.rejected == 1
    limiter.release(tenant="flood")
    await _settle()
    # the light key holds no slot, the flooding key still holds one: the light key goes first
    assert light.done() and not flood[0].done()
    limiter.release(tenant="flood")
    assert await asyncio.wait_for(flood[0], 1) == "flood"
    assert limiter.in_flight == 2 and limiter.queued == 0


async def test_a_freed_slot_goes_to_the_waiting_key_with_the_fewest_in_flight() -> None:
    line = FairQueue()
    busy, idle = _futures(1), _futures(1)
    line.push("interactive", "busy", busy[0])
    line.push("interactive", "idle", idle[0])
    assert line.pop(holding={"busy": 5, "idle": 1}) == (idle[0], "idle")
    assert line.pop(holding={"busy": 5}) == (busy[0], "busy")


async def test_a_full_line_refuses_the_key_with_most_in_flight_even_when_it_waits_least() -> None:
    line = FairQueue()
    heavy, light = _futures(1), _futures(2)
    line.push("interactive", "heavy", heavy[0])
    for f in light:
        line.push("interactive", "light", f)
    holding = {"heavy": 10, "light": 1}
    assert line.make_room_for("interactive", "other", holding) is heavy[0]
    assert line.make_room_for("interactive", "heavy", holding) is None


async def test_a_key_alone_is_refused_when_its_line_is_full() -> None:
    limiter = _limiter(limit=1, queue=1)
    await limiter.acquire("k")
    waiting = asyncio.create_task(_take(limiter, "k"))
    await asyncio.sleep(0)
    with pytest.raises(RateLimited):
        await limiter.acquire("k")
    limiter.release()
    assert await waiting == "k"


async def test_batch_work_uses_spare_capacity_and_leaves_the_rest_to_interactive_requests() -> None:
    limiter = _limiter(limit=4, queue=8, batch_share=0.5)
    await limiter.acquire("nightly", "batch")
    await limiter.acquire("nightly", "batch")
    third = asyncio.create_task(_take(limiter, "nightly", "batch"))
    await asyncio.sleep(0)
    assert limiter.in_flight == 2 and not third.done()  # batch is held at half the limit
    await limiter.acquire("app")
    await limiter.acquire("app")
    assert limiter.in_flight == 4
    queued_app = asyncio.create_task(_take(limiter, "app"))
    await asyncio.sleep(0)
    limiter.release()  # a batch call ends: the interactive waiter goes first
    await _settle()
    assert queued_app.done() and not third.done()
    limiter.release()
    limiter.release()
    await _settle()
    assert limiter.in_flight == 2 and not third.done()  # batch starts only under half the limit
    limiter.release()
    await _settle()
    assert third.done()
    assert limiter.in_flight == 2
