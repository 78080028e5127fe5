"""Counters in Redis, shared by every process of every gateway instance.

One pipelined connection per process (``resp.RespClient``, a third of redis-py's CPU per call); each
operation is one ``EVALSHA`` of a script from ``redis_scripts`` (loaded once by
:meth:`RedisCounters.load_scripts`, and again whenever Redis answers ``NOSCRIPT``, after a restart or
a ``SCRIPT FLUSH``). Every key starts with the configured prefix. Commands are never retried here: an
operation that fails or times out raises :class:`~interlock.governance.counters.CountersUnavailable`
at once, and the caller (``fallback``) decides what to do.

Key layout, after the prefix (``interlock:`` by default):

- ``budget:<scope>:<id>:<model>:<period>`` hash and ``…:exp`` sorted set: one budget period;
- ``rate:<scope>:<id>:<model>:<kind>`` string: a GCRA bucket's theoretical arrival time (ms);
- ``conc:<scope>:<id>:<model>`` sorted set: concurrency leases scored by expiry (ms).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from interlock.governance.counters import (
    AcquireOutcome,
    BucketLine,
    BucketState,
    BudgetLine,
    BudgetUsage,
    CountersUnavailable,
    LeaseLine,
    ReserveOutcome,
    SettleOutcome,
)
from interlock.governance.redis_scripts import (
    ACQUIRE,
    ADJUST,
    ALL_SCRIPTS,
    RELEASE,
    RELEASE_LEASES,
    RESERVE,
    SETTLE,
    USAGE,
    LuaScript,
)
from interlock.governance.resp import NoScript, RespBusy, RespClient

__all__ = ["RedisCounters"]

_UNAVAILABLE = (OSError, RespBusy)
"""Refused, lost, timed out (``RespUnavailable`` is an ``OSError``), or busy, loading, read-only, OOM."""


def _expiry(at_ms: int | None) -> str:
    return "" if at_ms is None else str(at_ms)


class RedisCounters:
    """The :class:`~interlock.governance.counters.Counters` operations as Lua scripts in Redis."""

    def __init__(self, client: RespClient, prefix: str = "interlock:") -> None:
        self.client = client
        self.prefix = prefix
        self.script_loads = 0
        """How many times a script was (re)loaded: once each at start, again after ``NOSCRIPT``."""

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "interlock:",
        connect_timeout_s: float = 0.5,
        timeout_s: float = 0.25,
        max_connections: int = 64,
    ) -> RedisCounters:
        """``max_connections`` is accepted for compatibility and unused: every call of this process
        is pipelined on one connection, which carries far more calls a second than one process makes."""
        del max_connections
        return cls(RespClient.from_url(url, connect_timeout_s=connect_timeout_s, timeout_s=timeout_s), prefix)

    async def ping(self) -> bool:
        """Whether Redis answers now."""
        try:
            return await self.client.ping() == "PONG"
        except _UNAVAILABLE:
            return False

    async def load_scripts(self) -> None:
        try:
            for script in ALL_SCRIPTS:
                await self.client.script_load(script.source)
                self.script_loads += 1
        except _UNAVAILABLE as exc:
            raise CountersUnavailable(f"Redis is unreachable: {type(exc).__name__}") from exc

    async def _run(self, script: LuaScript, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        try:
            try:
                return await self.client.evalsha(script.sha, len(keys), *keys, *args)
            except NoScript:
                await self.client.script_load(script.source)
                self.script_loads += 1
                return await self.client.evalsha(script.sha, len(keys), *keys, *args)
        except _UNAVAILABLE as exc:
            raise CountersUnavailable(f"Redis is unreachable: {type(exc).__name__}") from exc

    def _budget_keys(self, lines: Sequence[BudgetLine]) -> list[str]:
        keys: list[str] = []
        for line in lines:
            keys += (self.prefix + line.key, self.prefix + line.key + ":exp")
        return keys

    async def reserve(
        self, lines: Sequence[BudgetLine], reservation_id: str, amount: int, now_ms: int, ttl_ms: int
    ) -> ReserveOutcome:
        args: list[str | int] = [now_ms, reservation_id, amount, now_ms + ttl_ms]
        for line in lines:
            args += (line.limit, 1 if line.enforce else 0, _expiry(line.expires_at_ms))
        granted, refused, *used = await self._run(RESERVE, self._budget_keys(lines), args)
        return ReserveOutcome(bool(granted), tuple(int(u) for u in used), refused - 1 if refused else None)

    async def settle(
        self, lines: Sequence[BudgetLine], reservation_id: str, actual: int, now_ms: int
    ) -> SettleOutcome:
        args: list[str | int] = [now_ms, reservation_id, actual]
        for line in lines:
            marks = ",".join(
                f"{p}:{m}" for p, m in zip(line.thresholds, line.threshold_micros(), strict=True)
            )
            args += (_expiry(line.expires_at_ms), marks)
        settled, crossed = await self._run(SETTLE, self._budget_keys(lines), args)
        return SettleOutcome(
            tuple(int(s) for s in settled),
            tuple(tuple(int(p) for p in c.split(",")) if c else () for c in crossed),
        )

    async def release(self, lines: Sequence[BudgetLine], reservation_id: str, now_ms: int) -> None:
        await self._run(RELEASE, self._budget_keys(lines), [now_ms, reservation_id])

    async def usage(self, lines: Sequence[BudgetLine], now_ms: int) -> tuple[BudgetUsage, ...]:
        flat = await self._run(USAGE, self._budget_keys(lines), [now_ms])
        return tuple(BudgetUsage(int(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2))

    async def acquire(
        self, buckets: Sequence[BucketLine], leases: Sequence[LeaseLine], lease_id: str, now_ms: int
    ) -> AcquireOutcome:
        keys = [self.prefix + b.key for b in buckets] + [self.prefix + c.key for c in leases]
        args: list[str | int] = [now_ms, lease_id, len(buckets)]
        for b in buckets:
            args += (b.limit, b.window_ms, b.cost)
        for c in leases:
            args += (c.limit, c.ttl_ms)
        granted, refused, wait, flat, counts = await self._run(ACQUIRE, keys, args)
        states = tuple(BucketState(int(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2))
        in_use = tuple(int(c) for c in counts)
        return AcquireOutcome(bool(granted), states, in_use, refused - 1 if refused else None, int(wait))

    async def adjust(self, buckets: Sequence[BucketLine], now_ms: int) -> None:
        args: list[str | int] = [now_ms]
        for b in buckets:
            args += (b.limit, b.window_ms, b.cost)
        await self._run(ADJUST, [self.prefix + b.key for b in buckets], args)

    async def release_leases(self, leases: Sequence[LeaseLine], lease_id: str, now_ms: int) -> None:
        await self._run(RELEASE_LEASES, [self.prefix + c.key for c in leases], [lease_id])

    async def aclose(self) -> None:
        await self.client.aclose()
