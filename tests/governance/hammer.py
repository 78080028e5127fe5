"""Work for the processes of the multi-process tests: each opens its own backend and hammers one
budget or one limit. Module-level functions, so that spawned processes can import them."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from multiprocessing.queues import Queue
from pathlib import Path

from interlock.core.context import Principal
from interlock.governance.budgets import Budget, BudgetEngine, Granted
from interlock.governance.counters import Counters
from interlock.governance.local_counters import LocalCounters, MemoryStore
from interlock.governance.ratelimits import Admitted, RateLimit, RateLimiter
from interlock.governance.redis_counters import RedisCounters
from interlock.governance.scopes import Scope
from interlock.governance.sqlite_store import SqliteStore

__all__ = [
    "BUDGET",
    "CALLER",
    "LIMIT",
    "NOW",
    "BudgetTally",
    "budget_rounds",
    "budget_worker",
    "hold_and_wait",
    "limit_worker",
    "open_backend",
]

NOW = 1_717_000_000.0
CALLER = Principal(key_id="k1", name="k1", team_id="t1")
BUDGET = Budget("team", Scope("team", "t1"), "month", 10_000)
LIMIT = RateLimit("team", Scope("team", "t1"), requests_per_min=50, concurrent=7)


def open_backend(backend: str, where: str) -> Counters:
    """``where``: the SQLite file, or the Redis key prefix."""
    if backend == "memory":
        return LocalCounters(MemoryStore())
    if backend == "sqlite":
        return LocalCounters(SqliteStore(Path(where)))
    return RedisCounters.from_url(
        "redis://127.0.0.1:6379/0", prefix=where, timeout_s=10, connect_timeout_s=10
    )


@dataclass(frozen=True, slots=True)
class BudgetTally:
    granted: int = 0
    refused: int = 0
    spent: int = 0
    """Sum of the actual amounts settled."""
    overshoot: int = 0
    """Sum of what settled amounts exceeded their reservations by."""

    def __add__(self, other: BudgetTally) -> BudgetTally:
        return BudgetTally(
            self.granted + other.granted,
            self.refused + other.refused,
            self.spent + other.spent,
            self.overshoot + other.overshoot,
        )


async def budget_rounds(
    counters: Counters, seed: int, tasks: int, rounds: int, fixed: int | None
) -> BudgetTally:
    """``tasks`` concurrent tasks, each reserving ``rounds`` times. With ``fixed``, every request
    reserves ``fixed`` and never settles; otherwise random amounts are settled (some above their
    reservation) or released."""
    engine = BudgetEngine([BUDGET], counters, reservation_ttl_s=600, clock=lambda: NOW)
    levels = engine.levels(CALLER, "m")
    rng = random.Random(seed)

    async def one_task() -> BudgetTally:
        tally = BudgetTally()
        for _ in range(rounds):
            amount = fixed or rng.randint(1, 400)
            answer = await engine.reserve(levels, amount)
            if not isinstance(answer, Granted):
                tally += BudgetTally(refused=1)
                continue
            if fixed:
                tally += BudgetTally(granted=1)
                continue
            await asyncio.sleep(0)  # let other tasks in between reserve and settle
            roll = rng.random()
            if roll < 0.2:
                await engine.release(answer.reservation)
                tally += BudgetTally(granted=1)
                continue
            actual = amount + rng.randint(1, 50) if roll > 0.9 else rng.randint(0, amount)
            await engine.settle(answer.reservation, actual)
            tally += BudgetTally(1, 0, actual, max(0, actual - amount))
        return tally

    total = BudgetTally()
    for tally in await asyncio.gather(*(one_task() for _ in range(tasks))):
        total += tally
    return total


def budget_worker(
    backend: str, where: str, seed: int, tasks: int, rounds: int, fixed: int | None
) -> BudgetTally:
    async def run() -> BudgetTally:
        counters = open_backend(backend, where)
        try:
            return await budget_rounds(counters, seed, tasks, rounds, fixed)
        finally:
            await counters.aclose()

    return asyncio.run(run())


def limit_worker(backend: str, where: str, tasks: int, rounds: int) -> int:
    """How many of ``tasks × rounds`` acquisitions (never released) were admitted."""

    async def run() -> int:
        counters = open_backend(backend, where)
        limiter = RateLimiter([LIMIT], counters, clock=lambda: NOW)
        levels = limiter.levels(CALLER, "m")

        async def one_task() -> int:
            admitted = 0
            for _ in range(rounds):
                admitted += isinstance(await limiter.acquire(levels, tokens=1), Admitted)
            return admitted

        try:
            return sum(await asyncio.gather(*(one_task() for _ in range(tasks))))
        finally:
            await counters.aclose()

    return asyncio.run(run())


def hold_and_wait(backend: str, where: str, amount: int, ready: Queue[str]) -> None:
    """Reserve ``amount`` and take a concurrency slot, say so, then wait to be killed."""

    async def run() -> None:
        counters = open_backend(backend, where)
        engine = BudgetEngine([BUDGET], counters, reservation_ttl_s=60, clock=lambda: NOW)
        limiter = RateLimiter([LIMIT], counters, lease_ttl_s=60, clock=lambda: NOW)
        answer = await engine.reserve(engine.levels(CALLER, "m"), amount)
        admitted = 0
        for _ in range(LIMIT.concurrent or 0):
            admitted += isinstance(await limiter.acquire(limiter.levels(CALLER, "m"), tokens=1), Admitted)
        ready.put(f"{type(answer).__name__} {admitted}")
        await asyncio.Event().wait()  # until SIGKILL

    asyncio.run(run())
