"""Budget pressure: how much of the tightest budget a caller draws on is used, for tiering.

The ``tier`` stage runs before the ``budget`` stage (it decides which model, hence which prices, a
request is reserved at), so it cannot ask the counters without a round trip of its own. Instead
every reservation leaves here what it saw — settled plus reserved spend, per budget and subject —
and the tier stage reads the last value. A subject that has not reserved lately reads as no
pressure. The table is bounded: past ``max_subjects`` it starts again from empty.
"""

from __future__ import annotations

from collections.abc import Sequence

from interlock.core.context import RequestContext
from interlock.governance.budgets import BudgetEngine, BudgetLevel

__all__ = ["BudgetPressure"]


class BudgetPressure:
    def __init__(self, engine: BudgetEngine, max_subjects: int = 100_000) -> None:
        self._engine = engine
        self._used: dict[tuple[str, str], float] = {}
        self._max = max_subjects

    def note(self, levels: Sequence[BudgetLevel], used: Sequence[int], amount: int) -> None:
        """A reservation of ``amount`` was granted at ``levels``, which had ``used`` before it."""
        if len(self._used) > self._max:
            self._used.clear()
        for level, before in zip(levels, used, strict=False):
            self._used[(level.budget.name, level.subject)] = (before + amount) / level.budget.limit

    def __call__(self, ctx: RequestContext) -> float | None:
        """The largest share used among the budgets ``ctx``'s caller draws on; None if unknown."""
        if ctx.principal is None or not self._engine.budgets:
            return None
        shares = [
            self._used[key]
            for level in self._engine.levels(ctx.principal, ctx.model)
            if (key := (level.budget.name, level.subject)) in self._used
        ]
        return max(shares) if shares else None
