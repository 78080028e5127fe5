"""Redis first; while Redis is unreachable, conservative per-process counting. Never fail open.

When a Redis call fails, this process logs one line, marks ``SharedStateHealth`` degraded (the
metric and the readiness flag follow) and answers from an in-memory ``LocalCounters`` in which every
limit is cut to this process's share (``share``, 1 / the number of processes expected to share the
limits), so that all processes together stay within the limit:

- a rate limit or concurrency limit of ``L`` becomes ``floor(L × share)`` (at least 1);
- a budget becomes ``share`` of what was still free the last time this process heard from Redis
  (``limit − settled − reserved`` as then seen), or of the whole limit if it never had.

A background task pings Redis every ``retry_interval_s``; once it answers, the spend settled during
the outage is added to the shared budgets, and calls go to Redis again. Reservations and leases taken
on the fallback are settled and released there. Thresholds are not reported from the fallback: the
spend it writes back to Redis reaches them, and the next settle after recovery reports them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Sequence
from dataclasses import replace

from interlock.governance.counters import (
    NO_RESERVATION,
    AcquireOutcome,
    BucketLine,
    BudgetLine,
    BudgetUsage,
    CountersUnavailable,
    LeaseLine,
    ReserveOutcome,
    SettleOutcome,
)
from interlock.governance.health import SharedStateHealth
from interlock.governance.local_counters import LocalCounters, MemoryStore
from interlock.governance.redis_counters import RedisCounters

__all__ = ["FallbackCounters"]

log = logging.getLogger(__name__)

_ID_PRUNE_AT = 10_000


class FallbackCounters:
    """The :class:`~interlock.governance.counters.Counters` operations, in Redis or on the fallback."""

    def __init__(
        self,
        primary: RedisCounters,
        health: SharedStateHealth,
        *,
        share: float,
        retry_interval_s: float = 1.0,
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        self.primary = primary
        self.local = LocalCounters(MemoryStore())
        self.health = health
        self.share = share
        self._retry_interval_s = retry_interval_s
        self._seen: dict[str, int] = {}
        """Per budget key: settled plus reserved, as Redis last told this process."""
        self._pending: dict[str, tuple[BudgetLine, int]] = {}
        """Spend settled while Redis was away, to add to the shared budgets once it answers."""
        self._local_ids: dict[str, int] = {}
        """Reservations and leases taken on the fallback (id → expiry ms)."""
        self._latest_ms = 0
        self._reconnect: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Load the scripts; an unreachable Redis starts the process on the fallback."""
        try:
            await self.primary.load_scripts()
        except CountersUnavailable as exc:
            self._trip(exc)

    # -- the switch ------------------------------------------------------------------------------

    def _trip(self, exc: CountersUnavailable) -> None:
        if self.health.mark_degraded():
            processes = round(1 / self.share)
            log.warning(
                "shared counters unreachable (%s): limits and budgets counted per process, at 1/%d each,"
                " until Redis answers",
                exc,
                processes,
            )
        if self._reconnect is None or self._reconnect.done():
            self._reconnect = asyncio.create_task(self._reconnect_loop(), name="interlock-redis-reconnect")

    async def _reconnect_loop(self) -> None:
        while True:
            await asyncio.sleep(self._retry_interval_s)
            if not await self.primary.ping():
                continue
            try:
                await self.primary.load_scripts()
                await self._write_back()
            except CountersUnavailable:
                continue
            # what the fallback counted is now in Redis (spend) or moot (buckets, leases): start afresh
            # next time, so that an outage's spend is not held against the next outage's share
            self.local = LocalCounters(MemoryStore())
            self.health.mark_shared()
            log.warning("shared counters reachable again: limits and budgets are shared across processes")
            return

    async def _write_back(self) -> None:
        while self._pending:
            key, (line, amount) = next(iter(self._pending.items()))
            await self.primary.settle([replace(line, thresholds=())], NO_RESERVATION, amount, self._latest_ms)
            del self._pending[key]

    def _owe(self, lines: Sequence[BudgetLine], amount: int) -> None:
        for line in lines:
            _, owed = self._pending.get(line.key, (line, 0))
            self._pending[line.key] = (line, owed + amount)

    def _remember_local(self, ident: str, expires_ms: int) -> None:
        if len(self._local_ids) >= _ID_PRUNE_AT:
            now = self._latest_ms
            self._local_ids = {i: exp for i, exp in self._local_ids.items() if exp > now}
        self._local_ids[ident] = expires_ms

    def _budget_share(self, line: BudgetLine) -> BudgetLine:
        free = max(0, line.limit - self._seen.get(line.key, 0))
        return replace(line, limit=math.floor(free * self.share), thresholds=())

    def _bucket_share(self, line: BucketLine) -> BucketLine:
        return replace(line, limit=max(1, math.floor(line.limit * self.share)))

    def _lease_share(self, line: LeaseLine) -> LeaseLine:
        return replace(line, limit=max(1, math.floor(line.limit * self.share)))

    def _degraded_call(self) -> bool:
        if self.health.degraded:
            self.health.fallback_calls += 1
            return True
        return False

    # -- budgets ---------------------------------------------------------------------------------

    async def reserve(
        self, lines: Sequence[BudgetLine], reservation_id: str, amount: int, now_ms: int, ttl_ms: int
    ) -> ReserveOutcome:
        self._latest_ms = max(self._latest_ms, now_ms)
        if not self._degraded_call():
            try:
                outcome = await self.primary.reserve(lines, reservation_id, amount, now_ms, ttl_ms)
            except CountersUnavailable as exc:
                self._trip(exc)
                self.health.fallback_calls += 1
            else:
                for line, used in zip(lines, outcome.used, strict=True):
                    self._seen[line.key] = used + (amount if outcome.granted else 0)
                return outcome
        local = [self._budget_share(line) for line in lines]
        outcome = await self.local.reserve(local, reservation_id, amount, now_ms, ttl_ms)
        if outcome.granted:
            self._remember_local(reservation_id, now_ms + ttl_ms)
        return outcome

    async def settle(
        self, lines: Sequence[BudgetLine], reservation_id: str, actual: int, now_ms: int
    ) -> SettleOutcome:
        self._latest_ms = max(self._latest_ms, now_ms)
        if reservation_id in self._local_ids:
            del self._local_ids[reservation_id]
            outcome = await self.local.settle(
                [self._budget_share(line) for line in lines], reservation_id, actual, now_ms
            )
            self._owe(lines, actual)
            if not self.health.degraded:
                with contextlib.suppress(CountersUnavailable):
                    await self._write_back()
            return SettleOutcome(outcome.settled, tuple(() for _ in lines))
        try:
            if self._degraded_call():
                raise CountersUnavailable("Redis is unreachable")
            outcome = await self.primary.settle(lines, reservation_id, actual, now_ms)
        except CountersUnavailable as exc:
            if not self.health.degraded:
                self._trip(exc)
            # the reservation lapses in Redis by itself; the spend is written back on recovery
            self._owe(lines, actual)
            return SettleOutcome(tuple(0 for _ in lines), tuple(() for _ in lines))
        for line, settled in zip(lines, outcome.settled, strict=True):
            self._seen[line.key] = max(self._seen.get(line.key, 0), settled)
        return outcome

    async def release(self, lines: Sequence[BudgetLine], reservation_id: str, now_ms: int) -> None:
        if self._local_ids.pop(reservation_id, None) is not None:
            await self.local.release(lines, reservation_id, now_ms)
            return
        if self._degraded_call():
            return  # the reservation lapses in Redis by itself
        try:
            await self.primary.release(lines, reservation_id, now_ms)
        except CountersUnavailable as exc:
            self._trip(exc)

    async def usage(self, lines: Sequence[BudgetLine], now_ms: int) -> tuple[BudgetUsage, ...]:
        """Shared usage; raises ``CountersUnavailable`` while Redis is away (there is no true answer)."""
        return await self.primary.usage(lines, now_ms)

    # -- rate limits -----------------------------------------------------------------------------

    async def acquire(
        self, buckets: Sequence[BucketLine], leases: Sequence[LeaseLine], lease_id: str, now_ms: int
    ) -> AcquireOutcome:
        self._latest_ms = max(self._latest_ms, now_ms)
        if not self._degraded_call():
            try:
                return await self.primary.acquire(buckets, leases, lease_id, now_ms)
            except CountersUnavailable as exc:
                self._trip(exc)
                self.health.fallback_calls += 1
        outcome = await self.local.acquire(
            [self._bucket_share(b) for b in buckets], [self._lease_share(c) for c in leases], lease_id, now_ms
        )
        if outcome.granted and leases:
            self._remember_local(lease_id, now_ms + max(c.ttl_ms for c in leases))
        return outcome

    async def adjust(self, buckets: Sequence[BucketLine], now_ms: int) -> None:
        if self._degraded_call():
            await self.local.adjust([self._bucket_share(b) for b in buckets], now_ms)
            return
        try:
            await self.primary.adjust(buckets, now_ms)
        except CountersUnavailable as exc:
            self._trip(exc)

    async def release_leases(self, leases: Sequence[LeaseLine], lease_id: str, now_ms: int) -> None:
        if self._local_ids.pop(lease_id, None) is not None:
            await self.local.release_leases(leases, lease_id, now_ms)
            return
        if self._degraded_call():
            return  # the lease lapses in Redis by itself
        try:
            await self.primary.release_leases(leases, lease_id, now_ms)
        except CountersUnavailable as exc:
            self._trip(exc)

    async def aclose(self) -> None:
        if self._reconnect is not None:
            self._reconnect.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnect
        await self.local.aclose()
        await self.primary.aclose()
