"""The counter operations behave the same on every backend (memory, SQLite, Redis)."""

from __future__ import annotations

import redis.asyncio as aioredis

from interlock.governance.counters import (
    NO_RESERVATION,
    BucketLine,
    BudgetLine,
    BudgetUsage,
    Counters,
    LeaseLine,
)
from interlock.governance.redis_counters import RedisCounters

T0 = 1_700_000_000_000
A = BudgetLine("budget:t:a", 100, None, (70, 100, 120))
B = BudgetLine("budget:t:b", 50, T0 + 10**9, (50,))


async def test_reserve_is_all_or_nothing(counters: Counters) -> None:
    granted = await counters.reserve([A, B], "r1", 30, T0, 1000)
    assert granted.granted and granted.used == (0, 0)
    refused = await counters.reserve([A, B], "r2", 30, T0, 1000)
    # B (limit 50) cannot take another 30: nothing is held at A either
    assert not refused.granted and refused.refused == 1 and refused.used == (30, 30)
    assert await counters.usage([A, B], T0) == (BudgetUsage(0, 30), BudgetUsage(0, 30))


async def test_reserving_the_same_id_twice_holds_it_once(counters: Counters) -> None:
    assert (await counters.reserve([A], "r1", 30, T0, 1000)).granted
    assert (await counters.reserve([A], "r1", 30, T0, 1000)).granted
    assert await counters.usage([A], T0) == (BudgetUsage(0, 30),)


async def test_an_exact_fit_is_granted_and_one_more_micro_is_not(counters: Counters) -> None:
    assert (await counters.reserve([A], "r1", 100, T0, 1000)).granted
    await counters.release([A], "r1", T0)
    assert (await counters.reserve([A], "r2", 99, T0, 1000)).granted
    refused = await counters.reserve([A], "r3", 2, T0, 1000)
    assert not refused.granted and refused.used == (99,)


async def test_settle_replaces_the_reservation_by_the_actual_spend(counters: Counters) -> None:
    await counters.reserve([A, B], "r1", 40, T0, 1000)
    outcome = await counters.settle([A, B], "r1", 25, T0 + 1)
    assert outcome.settled == (25, 25) and outcome.crossed == ((), (50,))
    assert await counters.usage([A, B], T0 + 1) == (BudgetUsage(25, 0), BudgetUsage(25, 0))
    # settling the same reservation again adds spend but frees nothing more
    await counters.settle([A], "r1", 5, T0 + 2)
    assert await counters.usage([A], T0 + 2) == (BudgetUsage(30, 0),)


async def test_spend_without_a_reservation_and_overshoot_count_in_full(counters: Counters) -> None:
    await counters.reserve([A], "r1", 10, T0, 1000)
    assert (await counters.settle([A], "r1", 90, T0)).settled == (90,)
    assert (await counters.settle([A], NO_RESERVATION, 30, T0)).settled == (120,)
    refused = await counters.reserve([A], "r2", 1, T0, 1000)
    assert not refused.granted and refused.used == (120,)


async def test_release_frees_the_amount(counters: Counters) -> None:
    await counters.reserve([A], "r1", 80, T0, 1000)
    await counters.release([A], "r1", T0)
    await counters.release([A], "r1", T0)  # twice is harmless
    assert await counters.usage([A], T0) == (BudgetUsage(0, 0),)


async def test_reservations_lapse_at_their_expiry(counters: Counters) -> None:
    await counters.reserve([A], "r1", 60, T0, 1000)
    await counters.reserve([A], "r2", 30, T0 + 500, 1000)
    assert await counters.usage([A], T0 + 999) == (BudgetUsage(0, 90),)
    assert await counters.usage([A], T0 + 1000) == (BudgetUsage(0, 30),)
    assert (await counters.reserve([A], "r3", 70, T0 + 1000, 1000)).granted
    # a late settle of the lapsed reservation still counts its spend
    assert (await counters.settle([A], "r1", 10, T0 + 1200)).settled == (10,)
    assert await counters.usage([A], T0 + 1200) == (BudgetUsage(10, 100),)


async def test_each_threshold_is_reported_once(counters: Counters) -> None:
    crossed = []
    for step in range(13):
        outcome = await counters.settle([A], NO_RESERVATION, 10, T0 + step)
        crossed += [(step, pct) for pct in outcome.crossed[0]]
    # settled reaches 70 at step 6, 100 at step 9, 120 at step 11
    assert crossed == [(6, 70), (9, 100), (11, 120)]


async def test_a_threshold_passed_in_one_jump_reports_every_mark(counters: Counters) -> None:
    assert (await counters.settle([A], NO_RESERVATION, 500, T0)).crossed == ((70, 100, 120),)


async def test_a_period_key_is_dropped_after_its_expiry(counters: Counters) -> None:
    short = BudgetLine("budget:t:short", 100, T0 + 5000)
    await counters.settle([short], NO_RESERVATION, 100, T0)
    assert await counters.usage([short], T0 + 1) == (BudgetUsage(100, 0),)
    if isinstance(counters, RedisCounters):
        # Redis expires keys by its own clock: the TTL is set relative to the caller's now
        ttl = await counters.client.call("PTTL", counters.prefix + short.key)
        assert 0 < ttl <= 5000
    else:
        assert await counters.usage([short], T0 + 5000) == (BudgetUsage(0, 0),)


RPM = BucketLine("rate:t:requests", 3, 60_000, 1)
TPM = BucketLine("rate:t:tokens", 1000, 60_000, 400)
SLOTS = LeaseLine("conc:t", 2, 5000)


async def test_buckets_take_from_every_line_or_none(counters: Counters) -> None:
    first = await counters.acquire([RPM, TPM], [], "l1", T0)
    assert first.granted and [(s.remaining, s.reset_ms) for s in first.buckets] == [
        (2, 20_000),
        (600, 24_000),
    ]
    assert (await counters.acquire([RPM, TPM], [], "l2", T0)).granted
    third = await counters.acquire([RPM, TPM], [], "l3", T0)
    # the token bucket (1200 > 1000) refuses; the request bucket keeps its one unit
    assert not third.granted and third.refused == 1 and third.retry_after_ms == 12_000
    alone = await counters.acquire([RPM], [], "l4", T0)
    assert alone.granted and alone.buckets[0].remaining == 0


async def test_a_bucket_refills_with_time(counters: Counters) -> None:
    for index in range(3):
        assert (await counters.acquire([RPM], [], f"l{index}", T0)).granted
    refused = await counters.acquire([RPM], [], "l3", T0)
    assert not refused.granted and refused.retry_after_ms == 20_000
    assert not (await counters.acquire([RPM], [], "l3", T0 + 19_999)).granted
    assert (await counters.acquire([RPM], [], "l3", T0 + 20_000)).granted


async def test_adjust_gives_back_or_takes_more(counters: Counters) -> None:
    assert (await counters.acquire([TPM], [], "l1", T0)).granted
    assert (await counters.acquire([TPM], [], "l2", T0)).granted
    assert not (await counters.acquire([TPM], [], "l3", T0)).granted
    await counters.adjust([BucketLine(TPM.key, 1000, 60_000, -300)], T0)  # used 100, not 400
    assert (await counters.acquire([TPM], [], "l3", T0)).granted
    await counters.adjust([BucketLine(TPM.key, 1000, 60_000, 2000)], T0)  # far more than estimated
    zero = BucketLine(TPM.key, 1000, 60_000, 0)
    assert not (await counters.acquire([zero], [], "l4", T0)).granted


async def test_leases_limit_concurrency_and_lapse(counters: Counters) -> None:
    assert (await counters.acquire([], [SLOTS], "l1", T0)).granted
    second = await counters.acquire([], [SLOTS], "l2", T0)
    assert second.granted and second.in_use == (2,)
    refused = await counters.acquire([RPM], [SLOTS], "l3", T0)
    assert not refused.granted and refused.refused == 1 and refused.in_use == (2,)
    # the request bucket took nothing from the refused call
    assert [s.remaining for s in (await counters.acquire([RPM], [], "x", T0)).buckets] == [2]
    await counters.release_leases([SLOTS], "l1", T0)
    assert (await counters.acquire([], [SLOTS], "l3", T0)).granted
    # l2 and l3 lapse 5 s after they were taken
    assert (await counters.acquire([], [SLOTS], "l4", T0 + 5000)).in_use == (1,)


async def test_scripts_are_loaded_again_after_a_flush(redis_url: str, prefix: str) -> None:
    counters = RedisCounters.from_url(redis_url, prefix=prefix)
    try:
        await counters.load_scripts()
        assert counters.script_loads == 7
        await counters.client.call("SCRIPT", "FLUSH")
        assert (await counters.reserve([A], "r1", 10, T0, 1000)).granted
        assert counters.script_loads == 8
        assert (await counters.reserve([A], "r2", 10, T0, 1000)).granted
        assert counters.script_loads == 8
    finally:
        await counters.aclose()


async def test_redis_keys_carry_the_prefix(redis_url: str, prefix: str, raw_redis: aioredis.Redis) -> None:
    counters = RedisCounters.from_url(redis_url, prefix=prefix)
    try:
        await counters.reserve([A], "r1", 10, T0, 1000)
        await counters.acquire([RPM], [SLOTS], "l1", T0)
    finally:
        await counters.aclose()
    keys = sorted([key async for key in raw_redis.scan_iter(match=prefix + "*")])
    assert keys == [prefix + k for k in ("budget:t:a", "budget:t:a:exp", "conc:t", "rate:t:requests")]
    assert await raw_redis.hgetall(prefix + "budget:t:a") == {"reserved": "10", "r:r1": "10"}
    assert await raw_redis.zrange(prefix + "budget:t:a:exp", 0, -1, withscores=True) == [("r1", T0 + 1000)]
