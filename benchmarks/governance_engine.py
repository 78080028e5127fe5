"""Cost per request of the governance engine: a budget reserve + settle, and a rate-limit check.

Each backend does the per-request work a gateway process would do, one call after another on one
event loop: ``BudgetEngine.reserve`` then ``settle`` at three levels (global, team, key), and
``RateLimiter.acquire`` then ``settle`` for three limits (key rpm + tpm, team rpm + concurrency,
model rpm). Backends: process memory, the SQLite file that several workers share without Redis
(one process here: no lock contention), and Redis on 127.0.0.1:6379 (skipped if absent). Values are
µs of wall time per request, the median of the rounds.

A second table compares the Redis clients on one ``EVALSHA`` after another: redis-py's asyncio client
(configured as ``RedisCounters`` used to configure it) and the pipelined ``RespClient`` that
``RedisCounters`` now uses, in CPU time of this process and wall time per call.

Run: ``python benchmarks/governance_engine.py [--quick] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import redis.asyncio as aioredis
import uvloop
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from interlock.core.context import Principal
from interlock.governance.budgets import Budget, BudgetEngine, Granted
from interlock.governance.counters import Counters
from interlock.governance.local_counters import LocalCounters, MemoryStore
from interlock.governance.ratelimits import Admitted, RateLimit, RateLimiter
from interlock.governance.redis_counters import RedisCounters
from interlock.governance.resp import RespClient
from interlock.governance.scopes import Scope
from interlock.governance.sqlite_store import SqliteStore

REDIS_URL = "redis://127.0.0.1:6379/0"
INCR_SCRIPT = "return redis.call('INCRBY', KEYS[1], ARGV[1])"
CALLER = Principal(key_id="k1", name="k1", team_id="t1", user_id="u1", org_id="o1")
BUDGETS = [
    Budget("all", Scope("global"), "month", 10**15),
    Budget("team", Scope("team"), "month", 10**14),
    Budget("key", Scope("key"), "day", 10**13),
]
LIMITS = [
    RateLimit("key", Scope("key"), requests_per_min=10**8, tokens_per_min=10**11),
    RateLimit("team", Scope("team"), requests_per_min=10**8, concurrent=10**5),
    RateLimit("model", Scope("global", model="m"), requests_per_min=10**8),
]
TARGETS_US = {
    ("memory", "reserve+settle"): 100.0,
    ("memory", "limit check"): 100.0,
    ("redis", "reserve+settle"): 1000.0,
    ("redis", "limit check"): 1000.0,
    ("sqlite", "reserve+settle"): 1500.0,
    ("sqlite", "limit check"): 1500.0,
}


async def per_call_us(work: Callable[[], Awaitable[None]], calls: int) -> float:
    for _ in range(min(200, calls)):
        await work()
    start = time.perf_counter()
    for _ in range(calls):
        await work()
    return (time.perf_counter() - start) / calls * 1e6


async def measure(counters: Counters, calls: int, rounds: int) -> dict[str, float]:
    budgets = BudgetEngine(BUDGETS, counters)
    limiter = RateLimiter(LIMITS, counters)
    budget_levels = budgets.levels(CALLER, "m")
    limit_levels = limiter.levels(CALLER, "m")

    async def budget_request() -> None:
        answer = await budgets.reserve(budget_levels, 2000)
        assert isinstance(answer, Granted)
        await budgets.settle(answer.reservation, 1500)

    async def limit_request() -> None:
        answer = await limiter.acquire(limit_levels, tokens=500)
        assert isinstance(answer, Admitted)
        await limiter.settle(answer.ticket, tokens=420)

    results: dict[str, list[float]] = {"reserve+settle": [], "limit check": []}
    for _ in range(rounds):
        results["reserve+settle"].append(await per_call_us(budget_request, calls))
        results["limit check"].append(await per_call_us(limit_request, calls))
    return {name: statistics.median(values) for name, values in results.items()}


async def backends(tmp: Path) -> list[tuple[str, Counters | None]]:
    found: list[tuple[str, Counters | None]] = [
        ("memory", LocalCounters(MemoryStore())),
        ("sqlite", LocalCounters(SqliteStore(tmp / "counters.db"))),
    ]
    redis = RedisCounters.from_url(REDIS_URL, prefix=f"interlock-bench:{secrets.token_hex(4)}:")
    if await redis.ping():
        await redis.load_scripts()
        found.append(("redis", redis))
    else:
        await redis.aclose()
        found.append(("redis", None))
    return found


async def clean(counters: Counters) -> None:
    if isinstance(counters, RedisCounters):
        cursor = "0"
        while True:
            cursor, keys = await counters.client.call(
                "SCAN", cursor, "MATCH", counters.prefix + "*", "COUNT", 1000
            )
            if keys:
                await counters.client.call("DEL", *keys)
            if cursor == "0":
                break
    await counters.aclose()


async def evalsha_cost(calls: int, rounds: int) -> dict[str, tuple[float, float]] | None:
    """µs of CPU and of wall time per ``EVALSHA``, per client (median of rounds, taken in turns)."""
    resp = RespClient.from_url(REDIS_URL)
    pool = aioredis.ConnectionPool.from_url(
        REDIS_URL,
        socket_connect_timeout=0.5,
        socket_timeout=0.25,
        max_connections=64,
        decode_responses=True,
        retry=Retry(NoBackoff(), 0),
    )
    pyredis = aioredis.Redis.from_pool(pool)
    key = f"interlock-bench:{secrets.token_hex(4)}:evalsha"
    try:
        sha = await resp.script_load(INCR_SCRIPT)
        clients: dict[str, Callable[[], Awaitable[object]]] = {
            "redis-py": lambda: pyredis.evalsha(sha, 1, key, 1),
            "RespClient": lambda: resp.evalsha(sha, 1, key, 1),
        }
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in clients}
        for call in clients.values():
            for _ in range(min(500, calls)):
                await call()
        for _ in range(rounds):
            for name, call in clients.items():
                wall, cpu = time.perf_counter(), time.process_time()
                for _ in range(calls):
                    await call()
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                samples[name].append((cpu / calls * 1e6, wall / calls * 1e6))
        await resp.call("DEL", key)
    except OSError:
        return None
    finally:
        await resp.aclose()
        await pyredis.aclose()
    return {
        name: (statistics.median(c for c, _ in values), statistics.median(w for _, w in values))
        for name, values in samples.items()
    }


async def run(quick: bool, rounds: int) -> int:
    calls = 500 if quick else 3000
    table: dict[tuple[str, str], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, counters in await backends(Path(tmp)):
            if counters is None:
                print(f"{name}: unreachable, skipped")
                continue
            try:
                for op, us in (await measure(counters, calls, rounds)).items():
                    table[(name, op)] = us
            finally:
                await clean(counters)
    print(f"\nµs per request, median of {rounds} rounds of {calls} calls{' (--quick)' if quick else ''}")
    print(f"{'backend':<8} {'reserve+settle':>15} {'limit check':>12}")
    for name in ("memory", "sqlite", "redis"):
        if (name, "limit check") in table:
            print(f"{name:<8} {table[(name, 'reserve+settle')]:>15.1f} {table[(name, 'limit check')]:>12.1f}")
    print()
    clients = await evalsha_cost(calls, rounds)
    if clients is not None:
        print(f"µs per EVALSHA, one after another, median of {rounds} rounds of {calls} calls")
        print(f"{'client':<11} {'CPU':>6} {'wall':>6}")
        for name, (cpu, wall) in clients.items():
            print(f"{name:<11} {cpu:>6.1f} {wall:>6.1f}")
        print()
    missed = 0
    for (name, op), target in TARGETS_US.items():
        if (name, op) not in table:
            continue
        value = table[(name, op)]
        ok = value <= target
        missed += not ok
        label = f"{name} {op} per request"
        print(f"target: {label:<36} {value:8.1f} us <= {target:.0f} us  {'ok' if ok else 'MISSED'}")
    return 1 if missed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer calls and rounds")
    parser.add_argument("--repeat", type=int, default=5, help="rounds (median reported)")
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else max(1, args.repeat)
    return uvloop.run(run(args.quick, rounds))


if __name__ == "__main__":
    sys.exit(main())
