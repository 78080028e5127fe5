"""The shared counter backend: the few atomic operations that budgets and rate limits are made of.

A backend knows nothing of scopes, periods or config. It is handed *lines* — one storage key each,
with the numbers that key must respect — and applies an operation to all of them atomically: every
line or none. Three implementations keep the same semantics (tests run over all of them):

- ``RedisCounters`` (``redis_counters``): Lua scripts, shared by every process of every instance;
- ``LocalCounters`` over a ``MemoryStore`` (``local_counters``): one process, the embedded default;
- ``LocalCounters`` over a ``SqliteStore`` (``sqlite_store``): several workers of one instance
  without Redis, sharing one SQLite file.

Times are epoch milliseconds handed in by the caller (one injectable clock drives every backend, and
tests move it instead of sleeping). Money is integer micro-dollars (``money``).

Budget lines follow *reserve-then-settle*: ``reserve`` holds an amount at every line under one
reservation id, ``settle`` replaces it with the actual spend, ``release`` drops it. A reservation
carries an expiry; any operation on a line first sweeps that line's expired reservations, so the
holds of a crashed process vanish on their own.

Bucket lines are GCRA token buckets (a limit per window, bursts up to the whole limit); lease lines
are concurrency slots held under a lease id until released or expired.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "NO_RESERVATION",
    "AcquireOutcome",
    "BucketLine",
    "BucketState",
    "BudgetLine",
    "BudgetUsage",
    "Counters",
    "CountersUnavailable",
    "LeaseLine",
    "ReserveOutcome",
    "SettleOutcome",
]

NO_RESERVATION = ""
"""The reservation id that :meth:`Counters.settle` takes to add spend that was never reserved."""

# A GCRA step that lands within this many milliseconds past the window still fits: the interval is a
# float (window / limit), and n steps of it may sum to a hair over the window.
GCRA_EPSILON_MS = 1e-6


class CountersUnavailable(Exception):
    """The backend could not be reached or did not answer in time (nothing is known to have applied)."""


@dataclass(frozen=True, slots=True)
class BudgetLine:
    """One budget in one period: its storage key and its limit."""

    key: str
    limit: int
    """Micro-dollars."""
    expires_at_ms: int | None
    """When the key may be dropped (the period's end plus a grace); None: never."""
    thresholds: tuple[int, ...] = ()
    """Percentages of the limit to report, once each, when settled spend reaches them."""
    enforce: bool = True
    """False: the reservation is recorded here but this line never refuses it."""

    def threshold_micros(self) -> tuple[int, ...]:
        return tuple(self.limit * pct // 100 for pct in self.thresholds)


@dataclass(frozen=True, slots=True)
class ReserveOutcome:
    granted: bool
    used: tuple[int, ...]
    """Per line: settled plus reserved before this reservation (micro-dollars)."""
    refused: int | None = None
    """The index of the first line that could not take the amount."""


@dataclass(frozen=True, slots=True)
class SettleOutcome:
    settled: tuple[int, ...]
    """Per line: settled spend afterwards."""
    crossed: tuple[tuple[int, ...], ...]
    """Per line: the thresholds (percent) this call was the first to reach in the period."""


@dataclass(frozen=True, slots=True)
class BudgetUsage:
    settled: int
    reserved: int


@dataclass(frozen=True, slots=True)
class BucketLine:
    """A GCRA token bucket: ``limit`` units per ``window_ms``; this call takes ``cost`` units."""

    key: str
    limit: int
    window_ms: int
    cost: int


@dataclass(frozen=True, slots=True)
class LeaseLine:
    """At most ``limit`` leases held at once; each lapses ``ttl_ms`` after it was taken."""

    key: str
    limit: int
    ttl_ms: int


@dataclass(frozen=True, slots=True)
class BucketState:
    """What a bucket looks like after the call (or, when refused, as it stands)."""

    remaining: int
    reset_ms: int
    """Until the bucket is full again."""


@dataclass(frozen=True, slots=True)
class AcquireOutcome:
    granted: bool
    buckets: tuple[BucketState, ...]
    in_use: tuple[int, ...]
    """Per lease line: leases held afterwards (or, when refused, as they stand)."""
    refused: int | None = None
    """Index of the line that refused: buckets first, then lease lines."""
    retry_after_ms: int = 0


class Counters(Protocol):
    """The atomic operations every backend provides (see the module docstring)."""

    async def reserve(
        self, lines: Sequence[BudgetLine], reservation_id: str, amount: int, now_ms: int, ttl_ms: int
    ) -> ReserveOutcome:
        """Hold ``amount`` at every line, or at none if any enforcing line would exceed its limit.
        Reserving an id that is already held changes nothing and is granted."""
        ...

    async def settle(
        self, lines: Sequence[BudgetLine], reservation_id: str, actual: int, now_ms: int
    ) -> SettleOutcome:
        """Drop the reservation (if it is still held) and add ``actual`` to the settled spend."""
        ...

    async def release(self, lines: Sequence[BudgetLine], reservation_id: str, now_ms: int) -> None:
        """Drop the reservation without spending."""
        ...

    async def usage(self, lines: Sequence[BudgetLine], now_ms: int) -> tuple[BudgetUsage, ...]:
        """Settled and (unexpired) reserved amounts per line."""
        ...

    async def acquire(
        self, buckets: Sequence[BucketLine], leases: Sequence[LeaseLine], lease_id: str, now_ms: int
    ) -> AcquireOutcome:
        """Take ``cost`` from every bucket and a slot under ``lease_id`` from every lease line, or
        nothing if any of them refuses."""
        ...

    async def adjust(self, buckets: Sequence[BucketLine], now_ms: int) -> None:
        """Correct buckets by each line's ``cost`` (negative gives units back)."""
        ...

    async def release_leases(self, leases: Sequence[LeaseLine], lease_id: str, now_ms: int) -> None: ...

    async def aclose(self) -> None: ...
