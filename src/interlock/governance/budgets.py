"""Budgets: spend limits per scope and period, enforced by reserve-then-settle.

Before a request goes upstream, its maximum cost is *reserved* at every budget it draws on (global,
its org, team, user, key, and the model-specific ones among them), all or nothing: if any budget
cannot take it, nothing is reserved and the answer names that budget and what it has left. When the
request ends, :meth:`BudgetEngine.settle` replaces the reservation by the actual cost; a request that
failed is :meth:`~BudgetEngine.release`\\ d. A reservation lapses after ``reservation_ttl_s``, so a
process that died mid-request leaves no phantom spend behind.

So every granted reservation keeps ``settled + reserved <= limit`` at each budget, and settled spend
can pass the limit only by what requests cost beyond their reservation.

Settled spend reaching a threshold (70 %, 100 %, 120 % by default) yields one
:class:`ThresholdCrossed` per budget, threshold and period — across every process, because the
"already reported" mark lives with the counter. Periods are calendar-aligned in UTC and reset by
starting a new counter.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from interlock.core.context import Principal
from interlock.governance.counters import BudgetLine, BudgetUsage, Counters
from interlock.governance.ids import new_id
from interlock.governance.periods import Period, PeriodWindow, period_window
from interlock.governance.scopes import LevelCache, Scope, applicable

__all__ = [
    "DEFAULT_THRESHOLDS",
    "Budget",
    "BudgetEngine",
    "BudgetLevel",
    "Granted",
    "HardLimitAction",
    "RefusalReason",
    "Refused",
    "Reservation",
    "ThresholdCrossed",
]

HardLimitAction = Literal["block", "throttle", "downgrade"]
RefusalReason = Literal["exceeded", "never_fits", "request_cap"]
DEFAULT_THRESHOLDS = (70, 100, 120)
_KEY_GRACE_MS = 24 * 3600 * 1000
"""A period's counter outlives the period by a day, for settles of requests that began in it."""


@dataclass(frozen=True, slots=True)
class Budget:
    """A limit in micro-dollars on what one scope may spend per period."""

    name: str
    scope: Scope
    period: Period
    limit: int
    thresholds: tuple[int, ...] = DEFAULT_THRESHOLDS
    action: HardLimitAction = "block"
    """What the caller should do once the limit is reached; the engine only reports it."""


@dataclass(frozen=True, slots=True)
class BudgetLevel:
    """A budget as one request draws on it: the rule and the id it counts the request under."""

    budget: Budget
    subject: str


@dataclass(frozen=True, slots=True)
class Reservation:
    """An amount held at every level of one request until it is settled, released or lapses."""

    id: str
    levels: tuple[BudgetLevel, ...]
    lines: tuple[BudgetLine, ...]
    periods: tuple[str, ...]
    amount: int
    expires_at_ms: int


@dataclass(frozen=True, slots=True)
class Granted:
    reservation: Reservation
    used: tuple[int, ...] = ()
    """Per level: settled plus reserved spend before this reservation (micro-dollars)."""


@dataclass(frozen=True, slots=True)
class Refused:
    """Nothing was reserved. ``budget`` is None for a ``request_cap`` refusal (a per-key cap)."""

    reason: RefusalReason
    budget: Budget | None
    subject: str | None
    remaining: int
    """Micro-dollars: what the budget had left (or the cap)."""
    action: HardLimitAction


@dataclass(frozen=True, slots=True)
class ThresholdCrossed:
    """Settled spend reached ``threshold`` % of a budget: reported once per budget and period."""

    budget: str
    scope: Scope
    subject: str
    period: str
    threshold: int
    spent: int
    limit: int


class BudgetEngine:
    """Reserve, settle and release against the configured budgets, on any counter backend."""

    def __init__(
        self,
        budgets: Sequence[Budget],
        counters: Counters,
        *,
        reservation_ttl_s: float = 900.0,
        max_request_cost: int | None = None,
        key_max_request_cost: Mapping[str, int] | None = None,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = new_id,
    ) -> None:
        self.budgets = tuple(budgets)
        self.counters = counters
        self._ttl_ms = int(reservation_ttl_s * 1000)
        self._max_request_cost = max_request_cost
        self._key_caps = dict(key_max_request_cost or {})
        self._clock = clock
        self._new_id = new_id
        self._levels: LevelCache[BudgetLevel] = LevelCache(self._find_levels)
        self._windows: dict[Period, PeriodWindow] = {}

    def levels(self, principal: Principal, model: str) -> tuple[BudgetLevel, ...]:
        """The rules a request by ``principal`` for ``model`` counts against."""
        return self._levels(principal, model)

    def _find_levels(self, principal: Principal, model: str) -> tuple[BudgetLevel, ...]:
        """The budgets a request by ``principal`` for ``model`` draws on."""
        found = applicable(
            self.budgets,
            lambda b: b.scope,
            lambda b: (b.scope.kind, b.scope.model, b.period),
            principal,
            model,
        )
        return tuple(BudgetLevel(budget, subject) for budget, subject in found)

    def _window(self, period: Period, now_s: float) -> PeriodWindow:
        """The period containing ``now_s``; the calendar arithmetic runs once per period, not per
        request."""
        last = self._windows.get(period)
        now_ms = now_s * 1000
        if last is None or now_ms < last.start_ms or (last.end_ms is not None and now_ms >= last.end_ms):
            last = self._windows[period] = period_window(period, now_s)
        return last

    def request_cap(self, key_id: str | None) -> int | None:
        """The most one request of this key may cost (micro-dollars), if capped."""
        if key_id is not None and key_id in self._key_caps:
            return self._key_caps[key_id]
        return self._max_request_cost

    def _line(self, level: BudgetLevel, window: PeriodWindow, waived: bool) -> BudgetLine:
        budget = level.budget
        return BudgetLine(
            key=f"budget:{budget.scope.storage(level.subject)}:{window.label}",
            limit=budget.limit,
            expires_at_ms=None if window.end_ms is None else window.end_ms + self._ttl_ms + _KEY_GRACE_MS,
            thresholds=budget.thresholds,
            enforce=not waived,
        )

    async def reserve(
        self,
        levels: Sequence[BudgetLevel],
        amount: int,
        *,
        key_id: str | None = None,
        waive: Collection[str] = (),
    ) -> Granted | Refused:
        """Hold ``amount`` micro-dollars at every level, or nothing.

        ``waive`` names budgets whose limit this reservation may pass (the caller applied their
        ``throttle`` or ``downgrade`` action and goes on): they still count it.
        """
        cap = self.request_cap(key_id)
        if cap is not None and amount > cap:
            return Refused("request_cap", None, key_id, cap, "block")
        for level in levels:
            if level.budget.name not in waive and amount > level.budget.limit:
                budget = level.budget
                return Refused("never_fits", budget, level.subject, budget.limit, budget.action)
        now_s = self._clock()
        now_ms = int(now_s * 1000)
        windows = [self._window(level.budget.period, now_s) for level in levels]
        lines = tuple(
            self._line(level, window, level.budget.name in waive)
            for level, window in zip(levels, windows, strict=True)
        )
        reservation_id = self._new_id()
        outcome = await self.counters.reserve(lines, reservation_id, amount, now_ms, self._ttl_ms)
        if not outcome.granted:
            assert outcome.refused is not None
            level = levels[outcome.refused]
            remaining = max(0, level.budget.limit - outcome.used[outcome.refused])
            return Refused("exceeded", level.budget, level.subject, remaining, level.budget.action)
        return Granted(
            Reservation(
                id=reservation_id,
                levels=tuple(levels),
                lines=lines,
                periods=tuple(w.label for w in windows),
                amount=amount,
                expires_at_ms=now_ms + self._ttl_ms,
            ),
            outcome.used,
        )

    async def settle(self, reservation: Reservation, actual: int) -> tuple[ThresholdCrossed, ...]:
        """Replace the reservation by the actual cost (micro-dollars); the thresholds it crossed."""
        if actual < 0:
            raise ValueError("actual spend cannot be negative")
        now_ms = int(self._clock() * 1000)
        outcome = await self.counters.settle(reservation.lines, reservation.id, actual, now_ms)
        events: list[ThresholdCrossed] = []
        for level, period, settled, crossed in zip(
            reservation.levels, reservation.periods, outcome.settled, outcome.crossed, strict=True
        ):
            budget = level.budget
            events += (
                ThresholdCrossed(budget.name, budget.scope, level.subject, period, pct, settled, budget.limit)
                for pct in crossed
            )
        return tuple(events)

    async def release(self, reservation: Reservation) -> None:
        """Drop the reservation: the request spent nothing."""
        await self.counters.release(reservation.lines, reservation.id, int(self._clock() * 1000))

    async def usage(self, levels: Sequence[BudgetLevel]) -> tuple[BudgetUsage, ...]:
        """Settled and reserved spend of each level in its current period."""
        now_s = self._clock()
        lines = [self._line(level, self._window(level.budget.period, now_s), False) for level in levels]
        return await self.counters.usage(lines, int(now_s * 1000))
