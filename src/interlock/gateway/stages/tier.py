"""``tier``: a request to a tiered alias (``auto``) goes on as a request to the model its tier names.

The classifier and the rules are in :mod:`interlock.governance.tiering`. The choice is kept on the
request (``ctx.tier``) for the request record and the ``x-interlock-tier`` response header; from
here on the request is an ordinary request to the chosen model, so its allow-lists, limits,
budgets and routing are that model's. A key limited to some models gets the nearest tier it may use
(cheaper first); when it may use none of the three, a 403 names the alias.
"""

from __future__ import annotations

from collections.abc import Callable

from interlock.core.context import Reply, RequestContext
from interlock.core.errors import ModelNotAllowed
from interlock.gateway.chain import Next
from interlock.governance.tiering import TIERS, TierChoice, choose_tier
from interlock.routing.snapshot import SnapshotRef

__all__ = ["BudgetPressure", "TierStage"]

BudgetPressure = Callable[[RequestContext], float | None]
"""The share used of the tightest budget a request draws on; None when none applies."""


def _no_budgets(ctx: RequestContext) -> float | None:
    return None


class TierStage:
    def __init__(self, snapshot: SnapshotRef, pressure: BudgetPressure | None = None) -> None:
        self._snapshot = snapshot
        self._pressure = pressure or _no_budgets

    async def __call__(self, ctx: RequestContext, call_next: Next) -> Reply:
        spec = self._snapshot.current.tiers.get(ctx.model)
        if spec is not None and ctx.operation == "chat":
            choice = choose_tier(ctx.model, spec, ctx.body, self._pressure(ctx))
            principal = ctx.principal
            if (
                principal is not None
                and principal.models.patterns
                and not principal.models.allows(choice.model)
            ):
                choice = _nearest_allowed(choice, [spec.model_for(t) for t in TIERS], principal.models.allows)
            ctx.tier = choice.as_json()
            ctx.model = choice.model
        return await call_next(ctx)


def _nearest_allowed(choice: TierChoice, models: list[str], allows: Callable[[str], bool]) -> TierChoice:
    """The tier nearest ``choice`` whose model the key may use: cheaper ones first, then dearer."""
    rank = TIERS.index(choice.tier)
    for other in [*range(rank - 1, -1, -1), *range(rank + 1, len(TIERS))]:
        if allows(models[other]):
            reason = f"this key may not use '{choice.model}'"
            return TierChoice(
                choice.alias, TIERS[other], models[other], choice.confidence, (*choice.reasons, reason)
            )
    raise ModelNotAllowed(f"This API key may use none of the models of '{choice.alias}'.", param="model")
