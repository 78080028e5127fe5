"""Rate limits: requests, tokens and cost per minute as token buckets, and concurrent requests.

Every rule that applies to a request (its key, user, team, org, global, and the model-specific ones)
is checked in one atomic call: the request takes one unit from each request bucket, its estimated
tokens from each token bucket, its estimated cost from each cost bucket and a slot from each
concurrency limit — or nothing at all, and the answer says which limit refused and when to retry.
Buckets are GCRA (a limit per minute, bursts up to the whole limit). Concurrency slots are leases
that lapse after ``lease_ttl_s``, so a crashed process does not hold them forever.

After the request, :meth:`RateLimiter.settle` corrects the token and cost buckets by the real
counts (as budgets settle) and frees the slots.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from interlock.core.context import Principal
from interlock.governance.counters import BucketLine, Counters, LeaseLine
from interlock.governance.ids import new_id
from interlock.governance.rate_headers import RateHeaders
from interlock.governance.scopes import LevelCache, Scope, applicable

__all__ = [
    "Admitted",
    "LimitKind",
    "LimitLevel",
    "Limited",
    "RateLimit",
    "RateLimiter",
    "Ticket",
    "retry_after_header",
]

LimitKind = Literal["requests", "tokens", "cost", "concurrent"]
WINDOW_MS = 60_000


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Per-minute limits for one scope (None: not limited on that measure)."""

    name: str
    scope: Scope
    requests_per_min: int | None = None
    tokens_per_min: int | None = None
    cost_per_min: int | None = None
    """Micro-dollars per minute."""
    concurrent: int | None = None


@dataclass(frozen=True, slots=True)
class LimitLevel:
    limit: RateLimit
    subject: str


@dataclass(frozen=True, slots=True)
class _Check:
    """Which level and measure a bucket or lease line stands for."""

    level: LimitLevel
    kind: LimitKind


@dataclass(frozen=True, slots=True)
class Ticket:
    """What an admitted request holds until :meth:`RateLimiter.settle`."""

    lease_id: str
    buckets: tuple[BucketLine, ...]
    kinds: tuple[LimitKind, ...]
    leases: tuple[LeaseLine, ...]
    tokens: int
    cost: int


@dataclass(frozen=True, slots=True)
class Admitted:
    ticket: Ticket
    headers: RateHeaders


@dataclass(frozen=True, slots=True)
class Limited:
    """Refused, nothing taken. ``retry_after_s`` is None when the request can never fit (its tokens
    or cost exceed the limit's whole minute)."""

    limit: RateLimit
    subject: str
    kind: LimitKind
    retry_after_s: float | None
    headers: RateHeaders


class RateLimiter:
    """Checks and takes every applicable limit in one call to the counter backend."""

    def __init__(
        self,
        limits: Sequence[RateLimit],
        counters: Counters,
        *,
        lease_ttl_s: float = 900.0,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = new_id,
    ) -> None:
        self.limits = tuple(limits)
        self.counters = counters
        self._lease_ttl_ms = int(lease_ttl_s * 1000)
        self._clock = clock
        self._new_id = new_id
        self._levels: LevelCache[LimitLevel] = LevelCache(self._find_levels)

    def levels(self, principal: Principal, model: str) -> tuple[LimitLevel, ...]:
        """The rules a request by ``principal`` for ``model`` counts against."""
        return self._levels(principal, model)

    def _find_levels(self, principal: Principal, model: str) -> tuple[LimitLevel, ...]:
        """The limits a request by ``principal`` for ``model`` must pass."""
        found = applicable(
            self.limits, lambda r: r.scope, lambda r: (r.scope.kind, r.scope.model), principal, model
        )
        return tuple(LimitLevel(rule, subject) for rule, subject in found)

    def _lines(
        self, levels: Sequence[LimitLevel], tokens: int, cost: int
    ) -> tuple[list[BucketLine], list[_Check], list[LeaseLine], list[_Check]]:
        buckets: list[BucketLine] = []
        checks: list[_Check] = []
        leases: list[LeaseLine] = []
        lease_checks: list[_Check] = []
        for level in levels:
            rule, where = level.limit, level.limit.scope.storage(level.subject)
            measures: tuple[tuple[LimitKind, int | None, int], ...] = (
                ("requests", rule.requests_per_min, 1),
                ("tokens", rule.tokens_per_min, tokens),
                ("cost", rule.cost_per_min, cost),
            )
            for kind, limit, amount in measures:
                if limit is not None:
                    buckets.append(BucketLine(f"rate:{where}:{kind}", limit, WINDOW_MS, amount))
                    checks.append(_Check(level, kind))
            if rule.concurrent is not None:
                leases.append(LeaseLine(f"conc:{where}", rule.concurrent, self._lease_ttl_ms))
                lease_checks.append(_Check(level, "concurrent"))
        return buckets, checks, leases, lease_checks

    async def acquire(
        self, levels: Sequence[LimitLevel], *, tokens: int, cost: int = 0
    ) -> Admitted | Limited:
        """Take one request, ``tokens`` estimated tokens, ``cost`` micro-dollars and a slot from
        every limit of ``levels``, or nothing."""
        buckets, checks, leases, lease_checks = self._lines(levels, tokens, cost)
        for line, check in zip(buckets, checks, strict=True):
            if line.cost > line.limit:
                headers = RateHeaders.from_buckets(buckets, [c.kind for c in checks], None)
                return Limited(check.level.limit, check.level.subject, check.kind, None, headers)
        lease_id = self._new_id()
        now_ms = int(self._clock() * 1000)
        outcome = await self.counters.acquire(buckets, leases, lease_id, now_ms)
        kinds = [c.kind for c in checks]
        headers = RateHeaders.from_buckets(buckets, kinds, outcome.buckets)
        if not outcome.granted:
            assert outcome.refused is not None
            check = (checks + lease_checks)[outcome.refused]
            retry = outcome.retry_after_ms / 1000
            return Limited(check.level.limit, check.level.subject, check.kind, retry, headers)
        ticket = Ticket(lease_id, tuple(buckets), tuple(kinds), tuple(leases), tokens, cost)
        return Admitted(ticket, headers)

    async def settle(self, ticket: Ticket, *, tokens: int, cost: int = 0) -> None:
        """Correct the token and cost buckets by the real counts, and free the concurrency slots."""
        now_ms = int(self._clock() * 1000)
        corrections = []
        for line, kind in zip(ticket.buckets, ticket.kinds, strict=True):
            delta = (
                tokens - ticket.tokens if kind == "tokens" else cost - ticket.cost if kind == "cost" else 0
            )
            if delta:
                corrections.append(replace(line, cost=delta))
        if corrections:
            await self.counters.adjust(corrections, now_ms)
        if ticket.leases:
            await self.counters.release_leases(ticket.leases, ticket.lease_id, now_ms)

    async def release(self, ticket: Ticket) -> None:
        """The request failed before using anything: give back its tokens and cost, free its slots
        (the request itself still counts)."""
        await self.settle(ticket, tokens=0, cost=0)


def retry_after_header(limited: Limited) -> str | None:
    """``Retry-After`` in whole seconds (rounded up), or None for a request that can never fit."""
    if limited.retry_after_s is None:
        return None
    return str(max(1, math.ceil(limited.retry_after_s)))
