"""Many tasks and several processes on one budget and one limit: the invariants hold exactly.

Every process opens its own backend (its own SQLite connection, its own Redis pool), as the workers
of a gateway do. The clock is fixed, so buckets do not refill while the test runs.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

import pytest

from interlock.governance.budgets import BudgetEngine, Granted
from interlock.governance.counters import BudgetUsage, Counters
from interlock.governance.ratelimits import Admitted, Limited, RateLimiter
from tests.governance.conftest import SHARED_BACKENDS, open_counters
from tests.governance.hammer import (
    BUDGET,
    CALLER,
    LIMIT,
    NOW,
    BudgetTally,
    budget_rounds,
    budget_worker,
    hold_and_wait,
    limit_worker,
)

PROCESSES = 4
SPAWN = multiprocessing.get_context("spawn")  # fork is unsafe once threads run (SQLite, pytest)


def where(backend: str, tmp_path: Path, prefix: str) -> str:
    return str(tmp_path / "counters.db") if backend == "sqlite" else prefix


async def budget_usage(counters: Counters) -> BudgetUsage:
    engine = BudgetEngine([BUDGET], counters, clock=lambda: NOW)
    (usage,) = await engine.usage(engine.levels(CALLER, "m"))
    return usage


def check_spend(usage: BudgetUsage, tally: BudgetTally) -> None:
    assert usage.reserved == 0
    assert usage.settled == tally.spent  # no lost update
    assert usage.settled <= BUDGET.limit + tally.overshoot
    assert tally.refused > 0  # the budget was really contended


async def test_tasks_never_overbook_a_budget(counters: Counters) -> None:
    # 1,000 requests of 13 µ$ against 10,000 µ$: exactly 769 fit
    tally = await budget_rounds(counters, 1, tasks=50, rounds=20, fixed=13)
    assert (tally.granted, tally.refused) == (BUDGET.limit // 13, 1000 - BUDGET.limit // 13)
    assert await budget_usage(counters) == BudgetUsage(0, BUDGET.limit // 13 * 13)


async def test_tasks_settle_every_micro(counters: Counters) -> None:
    tally = await budget_rounds(counters, 2, tasks=40, rounds=25, fixed=None)
    check_spend(await budget_usage(counters), tally)


@pytest.mark.parametrize("backend", SHARED_BACKENDS)
async def test_processes_never_overbook_a_budget(
    backend: str, tmp_path: Path, prefix: str, redis_skip_reason: str | None
) -> None:
    if backend == "redis" and redis_skip_reason:
        pytest.skip(redis_skip_reason)
    place = where(backend, tmp_path, prefix)
    with SPAWN.Pool(PROCESSES) as pool:
        fixed = pool.starmap(budget_worker, [(backend, place, seed, 10, 100, 3) for seed in range(PROCESSES)])
        total = sum(t.granted for t in fixed)
    # 4 processes × 1000 requests of 3 µ$ against 10,000 µ$: exactly 3,333 fit
    assert total == BUDGET.limit // 3
    counters = await open_counters(backend, tmp_path=tmp_path, prefix=prefix)
    try:
        assert await budget_usage(counters) == BudgetUsage(0, BUDGET.limit // 3 * 3)
    finally:
        await counters.aclose()


@pytest.mark.parametrize("backend", SHARED_BACKENDS)
async def test_processes_settle_every_micro(
    backend: str, tmp_path: Path, prefix: str, redis_skip_reason: str | None
) -> None:
    if backend == "redis" and redis_skip_reason:
        pytest.skip(redis_skip_reason)
    place = where(backend, tmp_path, prefix)
    with SPAWN.Pool(PROCESSES) as pool:
        tallies = pool.starmap(
            budget_worker, [(backend, place, seed, 8, 40, None) for seed in range(PROCESSES)]
        )
    tally = sum(tallies, BudgetTally())
    counters = await open_counters(backend, tmp_path=tmp_path, prefix=prefix)
    try:
        check_spend(await budget_usage(counters), tally)
    finally:
        await counters.aclose()


async def test_tasks_never_pass_a_rate_or_concurrency_limit(counters: Counters) -> None:
    limiter = RateLimiter([LIMIT], counters, clock=lambda: NOW)
    levels = limiter.levels(CALLER, "m")
    answers = [await limiter.acquire(levels, tokens=1) for _ in range(20)]
    assert sum(isinstance(a, Admitted) for a in answers) == LIMIT.concurrent


@pytest.mark.parametrize("backend", SHARED_BACKENDS)
async def test_processes_never_pass_a_rate_or_concurrency_limit(
    backend: str, tmp_path: Path, prefix: str, redis_skip_reason: str | None
) -> None:
    if backend == "redis" and redis_skip_reason:
        pytest.skip(redis_skip_reason)
    place = where(backend, tmp_path, prefix)
    with SPAWN.Pool(PROCESSES) as pool:
        admitted = pool.starmap(limit_worker, [(backend, place, 5, 10)] * PROCESSES)
    assert sum(admitted) == LIMIT.concurrent  # leases are never released here: 7 slots in all


@pytest.mark.parametrize("backend", SHARED_BACKENDS)
async def test_a_killed_process_leaves_no_phantom_spend_or_slots(
    backend: str, tmp_path: Path, prefix: str, redis_skip_reason: str | None
) -> None:
    if backend == "redis" and redis_skip_reason:
        pytest.skip(redis_skip_reason)
    place = where(backend, tmp_path, prefix)
    ready = SPAWN.Queue()
    child = SPAWN.Process(target=hold_and_wait, args=(backend, place, 9000, ready), daemon=True)
    child.start()
    try:
        assert ready.get(timeout=120) == f"Granted {LIMIT.concurrent}"
    finally:
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        child.join(30)
    assert child.exitcode == -signal.SIGKILL

    clock = [NOW + 59.999]
    counters = await open_counters(backend, tmp_path=tmp_path, prefix=prefix)
    try:
        engine = BudgetEngine([BUDGET], counters, reservation_ttl_s=60, clock=lambda: clock[0])
        limiter = RateLimiter([LIMIT], counters, lease_ttl_s=60, clock=lambda: clock[0])
        levels, limit_levels = engine.levels(CALLER, "m"), limiter.levels(CALLER, "m")
        # until the reservation's expiry, the dead process's hold still counts
        assert (await engine.usage(levels))[0] == BudgetUsage(0, 9000)
        assert not isinstance(await engine.reserve(levels, 2000), Granted)
        refused = await limiter.acquire(limit_levels, tokens=1)
        assert isinstance(refused, Limited) and refused.kind == "concurrent"
        clock[0] = NOW + 60
        assert (await engine.usage(levels))[0] == BudgetUsage(0, 0)
        assert isinstance(await engine.reserve(levels, BUDGET.limit), Granted)
        assert isinstance(await limiter.acquire(limit_levels, tokens=1), Admitted)
    finally:
        await counters.aclose()
