"""``GET /admin/budgets``: every budget and rate limit, spend against a budget now, and the thresholds
reached lately.

Registered on the admin app by :func:`register_budget_routes`. Usage is read from the shared
counters (Redis, or this machine's) for the subject named in the query: ``key_id``, ``user_id``,
``team_id``, ``org_id`` — the budgets that subject draws on, with what they have settled and hold
reserved in the current period. Without a subject, the global budgets.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Depends, FastAPI
from starlette.responses import Response

from interlock.core.context import Principal
from interlock.governance.money import micros_to_usd
from interlock.server.caller_input import clip
from interlock.server.runtime import Runtime

__all__ = ["register_budget_routes"]


def register_budget_routes(
    app: FastAPI, runtime: Runtime, require: Callable[..., Coroutine[Any, Any, Principal]]
) -> None:
    """Add the budget routes to the admin app, guarded by ``require``."""

    @app.get("/budgets", dependencies=[Depends(require)])
    async def budgets(
        key_id: str | None = None,
        user_id: str | None = None,
        team_id: str | None = None,
        org_id: str | None = None,
        model: str = "",
    ) -> Response:
        """Budgets, limits, usage for one subject (or the global budgets) and recent thresholds."""
        gov = runtime.governance
        body: dict[str, Any] = {"budgets": [], "limits": [], "usage": [], "recent_thresholds": []}
        if gov is not None:
            body["budgets"] = [_budget_view(b) for b in gov.budgets.budgets]
            body["limits"] = [_limit_view(rule) for rule in gov.limits.limits]
            subject = Principal(
                key_id=clip(key_id or ""), name="", user_id=user_id, team_id=team_id, org_id=org_id
            )
            levels = gov.budgets.levels(subject, clip(model))
            if not key_id:
                levels = tuple(level for level in levels if level.budget.scope.kind != "key")
            usage = await gov.budgets.usage(levels)
            body["usage"] = [
                {
                    "budget": level.budget.name,
                    "scope": level.budget.scope.kind,
                    "subject": level.subject,
                    "period": level.budget.period,
                    "limit_usd": micros_to_usd(level.budget.limit),
                    "settled_usd": micros_to_usd(used.settled),
                    "reserved_usd": micros_to_usd(used.reserved),
                    "used_share": round((used.settled + used.reserved) / level.budget.limit, 4),
                }
                for level, used in zip(levels, usage, strict=True)
            ]
            body["recent_thresholds"] = list(runtime.budget_alerts.recent)
            body["shared_state"] = {
                "backend": gov.health.backend,
                "degraded": gov.health.degraded,
            }
        return Response(orjson.dumps(body), media_type="application/json")


def _budget_view(budget: Any) -> dict[str, Any]:
    return {
        "name": budget.name,
        "scope": budget.scope.kind,
        "id": budget.scope.id,
        "model": budget.scope.model,
        "period": budget.period,
        "limit_usd": micros_to_usd(budget.limit),
        "thresholds_pct": list(budget.thresholds),
        "action": budget.action,
    }


def _limit_view(rule: Any) -> dict[str, Any]:
    return {
        "name": rule.name,
        "scope": rule.scope.kind,
        "id": rule.scope.id,
        "model": rule.scope.model,
        "requests_per_min": rule.requests_per_min,
        "tokens_per_min": rule.tokens_per_min,
        "cost_per_min_usd": micros_to_usd(rule.cost_per_min) if rule.cost_per_min else None,
        "concurrent": rule.concurrent,
    }
