"""``budget``: reserve the request's maximum cost at every budget it draws on; block, throttle or
downgrade here.

The reservation (:mod:`interlock.governance.budgets`) is all or nothing across the levels — global,
org, team, user, key, and the ones for the model. When a budget cannot take it, the budget's action
decides:

- ``block``: a 429 ``budget_exceeded`` naming the budget, what it has left, and (for a budget that
  resets) ``Retry-After`` until the next period;
- ``throttle``: a trickle still passes — ``budgets.throttle_per_min`` requests a minute per budget
  and subject, counted against the budget but not refused by it — and the rest get the 429;
- ``downgrade``: the request goes to the next cheaper tier's model (a tiered alias's, see
  ``tiers:``), counted but not refused by that budget; with no cheaper tier, it is blocked.

A request whose maximum cost could never fit the budget, or exceeds its key's per-request cap
(the denial-of-wallet guard), is a 400 up front. The reservation is settled with the real cost
(released, if nothing was spent) when the request is recorded.
"""

from __future__ import annotations

import time

from interlock.config.governance import BudgetsSpec
from interlock.core.context import Principal, Reply, RequestContext
from interlock.core.errors import BudgetExceeded, InvalidRequest
from interlock.gateway.chain import Next
from interlock.governance.budgets import BudgetEngine, BudgetLevel, Granted, Refused
from interlock.governance.holds import BudgetHold, ThresholdSink
from interlock.governance.money import micros_to_usd
from interlock.governance.periods import period_window
from interlock.governance.pressure import BudgetPressure
from interlock.governance.ratelimits import Admitted, LimitLevel, RateLimit, RateLimiter
from interlock.governance.request_cost import request_max_cost
from interlock.governance.scopes import Scope
from interlock.governance.tiering import TIERS
from interlock.routing.snapshot import SnapshotRef

__all__ = ["BudgetStage"]


class BudgetStage:
    def __init__(
        self,
        engine: BudgetEngine,
        limiter: RateLimiter,
        snapshot: SnapshotRef,
        sink: ThresholdSink,
        pressure: BudgetPressure,
        spec: BudgetsSpec,
    ) -> None:
        self._engine = engine
        self._limiter = limiter
        self._snapshot = snapshot
        self._sink = sink
        self._pressure = pressure
        self._spec = spec

    async def __call__(self, ctx: RequestContext, call_next: Next) -> Reply:
        principal = ctx.principal
        if principal is None:
            return await call_next(ctx)
        engine = self._engine
        levels = engine.levels(principal, ctx.model)
        if not levels and engine.request_cap(principal.key_id) is None:
            return await call_next(ctx)
        granted = await self._reserve(ctx, principal, levels, frozenset())
        self._pressure.note(granted.reservation.levels, granted.used, granted.reservation.amount)
        ctx.holds.append(BudgetHold(engine, granted.reservation, self._sink))
        return await call_next(ctx)

    async def _reserve(
        self,
        ctx: RequestContext,
        principal: Principal,
        levels: tuple[BudgetLevel, ...],
        waive: frozenset[str],
    ) -> Granted:
        micros = request_max_cost(ctx, self._snapshot, self._spec.default_output_tokens)[2]
        outcome = await self._engine.reserve(levels, micros, key_id=principal.key_id, waive=waive)
        if isinstance(outcome, Granted):
            return outcome
        if outcome.reason != "exceeded" or outcome.budget is None:
            raise _never_fits(outcome, micros)
        name = outcome.budget.name
        if outcome.action == "throttle" and await self._trickle(outcome):
            return await self._reserve(ctx, principal, levels, waive | {name})
        if outcome.action == "downgrade" and self._downgrade(ctx, name):
            levels = self._engine.levels(principal, ctx.model)
            return await self._reserve(ctx, principal, levels, waive | {name})
        raise _spent(outcome, micros)

    async def _trickle(self, refused: Refused) -> bool:
        """Whether this request is one of the few a throttled budget still lets through."""
        assert refused.budget is not None and refused.subject is not None
        budget = refused.budget
        rule = RateLimit(
            name=f"budget-throttle:{budget.name}",
            scope=Scope(budget.scope.kind, refused.subject, budget.scope.model),
            requests_per_min=self._spec.throttle_per_min,
        )
        outcome = await self._limiter.acquire([LimitLevel(rule, refused.subject)], tokens=0)
        return isinstance(outcome, Admitted)

    def _downgrade(self, ctx: RequestContext, budget: str) -> bool:
        """Send the request to the next cheaper tier's model; False when there is none."""
        tiers = self._snapshot.current.tiers
        alias = str(ctx.tier["alias"]) if ctx.tier is not None else None
        candidates = [(alias, tiers[alias])] if alias is not None and alias in tiers else list(tiers.items())
        for name, spec in candidates:
            models = [spec.model_for(t) for t in TIERS]
            if ctx.model in models and models.index(ctx.model) > 0:
                cheaper = models.index(ctx.model) - 1
                principal = ctx.principal
                if principal is not None and not principal.models.allows(models[cheaper]):
                    return False
                reasons = list(ctx.tier["reasons"]) if ctx.tier is not None else []  # type: ignore[call-overload]
                ctx.tier = {
                    "alias": name,
                    "tier": TIERS[cheaper],
                    "model": models[cheaper],
                    "confidence": ctx.tier["confidence"] if ctx.tier is not None else 1.0,
                    "reasons": [*reasons, f"budget '{budget}' spent: one tier down"],
                }
                ctx.model = models[cheaper]
                ctx.max_cost = None
                return True
        return False


def _usd(micros: int) -> str:
    return f"${micros_to_usd(micros):,.2f}" if micros >= 10_000 else f"${micros_to_usd(micros):.6f}"


def _never_fits(refused: Refused, micros: int) -> InvalidRequest:
    if refused.reason == "request_cap":
        return InvalidRequest(
            f"This request may cost up to {_usd(micros)}, over this key's limit of {_usd(refused.remaining)} "
            "per request; lower max_tokens.",
            param="max_tokens",
        )
    assert refused.budget is not None
    return InvalidRequest(
        f"This request may cost up to {_usd(micros)}, more than budget '{refused.budget.name}' allows "
        f"in a whole {refused.budget.period} ({_usd(refused.budget.limit)}); lower max_tokens.",
        param="max_tokens",
    )


def _spent(refused: Refused, micros: int) -> BudgetExceeded:
    budget = refused.budget
    assert budget is not None
    who = "everyone" if budget.scope.kind == "global" else f"{budget.scope.kind} '{refused.subject}'"
    window = period_window(budget.period, time.time())
    retry = None if window.end_ms is None else max(1.0, window.end_ms / 1000 - time.time())
    return BudgetExceeded(
        f"Budget '{budget.name}' ({who}, per {budget.period}) is spent: {_usd(refused.remaining)} of "
        f"{_usd(budget.limit)} left, and this request may cost up to {_usd(micros)}.",
        retry_after=retry,
    )
