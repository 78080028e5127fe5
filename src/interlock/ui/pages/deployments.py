"""Models and deployments: health, breaker state, latency, load and pools; drain, disable, enable.

Each model shows its error rate over the last five minutes (failures of the gateway or its backends
among the requests they could hit) with the callers' own 4xx and the gateway's refusals beside it;
each deployment, its breaker's error rate (which a caller's 4xx never raises).

The operator actions change the same routing state as ``POST /admin/deployments/{id}/disable`` and
``…/enable``: a drained or disabled deployment gets no new requests, and requests already in flight
finish. (Drain and disable are the same switch; the audit log records which the operator meant, and
the page shows a disabled deployment with requests still in flight as *draining*.) Each action is
applied first and then written to the audit log, so an operator can still take a failing deployment
out of rotation while the database is down; the page says when the audit entry could not be written.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from interlock.core.errors import NotFound
from interlock.routing.snapshot import Deployment, ModelRoute
from interlock.routing.status import deployment_status
from interlock.store import AuditActor, StoreError
from interlock.ui.charts import chart, color, per_second, series, time_window
from interlock.ui.sections import ActionFunction, Section, SectionContext

__all__ = ["deployments_section"]

log = logging.getLogger("interlock.ui")

_WINDOW_S = 15 * 60
_OUTCOME_WINDOW_S = 5 * 60
_CHART_LINES = 8
_AVAILABLE = ("closed", "half_open")


async def deployments_data(ctx: SectionContext) -> dict[str, Any]:
    snapshot = ctx.runtime.snapshot.current
    statuses = deployment_status(snapshot, ctx.runtime.routing)
    for row in statuses:
        row["display_state"] = _display_state(row)
        limit = row["concurrency_limit"] or 1
        row["load"] = min(1.0, row["in_flight"] / limit)
    slo = {r["model"]: r for r in ctx.runtime.telemetry.slo_reports()} if ctx.viewer.can_operate else {}
    outcomes = await ctx.store.traffic.outcomes(
        ctx.now - timedelta(seconds=_OUTCOME_WINDOW_S), until=ctx.now, key_id=ctx.viewer.scope_key_id
    )
    models = [
        _model_view(route, statuses, slo.get(route.name), outcomes.get(route.name, {}))
        for route in snapshot.models.values()
    ]
    data: dict[str, Any] = {
        "models": models,
        "pools": _pools(statuses),
        "totals": {
            "deployments": len(statuses),
            "available": sum(1 for row in statuses if row["state"] in _AVAILABLE),
            "disabled": sum(1 for row in statuses if row["disabled"]),
            "open": sum(1 for row in statuses if row["breaker"]["state"] == "open"),
            "in_flight": sum(row["in_flight"] for row in statuses),
        },
        "charts": {"by_deployment": await _traffic_chart(ctx)},
        "audit": [],
    }
    if ctx.viewer.can_operate:
        entries = await ctx.store.audit.list(limit=8)
        data["audit"] = [
            {
                "at": e.at,
                "actor": e.actor_key_id,
                "action": e.action,
                "target": e.target,
                "detail": dict(e.detail),
            }
            for e in entries
        ]
    return data


def _display_state(row: Mapping[str, Any]) -> str:
    if row["disabled"]:
        return "draining" if row["in_flight"] else "disabled"
    if row["health_check_failing"]:
        return "unhealthy"
    return str(row["breaker"]["state"])


def _model_view(
    route: ModelRoute,
    statuses: list[dict[str, Any]],
    slo: Mapping[str, Any] | None,
    outcomes: Mapping[str, int],
) -> dict[str, Any]:
    rows = [row for row in statuses if row["model"] == route.name]
    return {
        "outcomes": _outcome_view(outcomes),
        "name": route.name,
        "kind": route.kind,
        "strategy": route.spec.routing.strategy,
        "fallbacks": list(route.fallbacks),
        "deployments": rows,
        "available": sum(1 for row in rows if row["state"] in _AVAILABLE),
        "in_flight": sum(row["in_flight"] for row in rows),
        "slo": slo,
    }


def _outcome_view(counts: Mapping[str, int]) -> dict[str, Any]:
    failures = counts.get("upstream_error", 0) + counts.get("gateway_error", 0)
    judged = failures + counts.get("ok", 0)
    return {
        "requests": sum(counts.values()),
        "errors": failures,
        "error_rate": failures / judged if judged else None,
        **{
            name: counts.get(name, 0)
            for name in ("upstream_error", "gateway_error", "client_error", "refused")
        },
    }


def _pools(statuses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    pools: dict[str, dict[str, Any]] = {}
    for row in statuses:
        name = row["pool"] or "default"
        pool = pools.setdefault(
            name,
            {"name": name, "deployments": 0, "available": 0, "in_flight": 0, "capacity": 0, "models": []},
        )
        pool["deployments"] += 1
        pool["available"] += row["state"] in _AVAILABLE
        pool["in_flight"] += row["in_flight"]
        pool["capacity"] += row["concurrency_limit"]
        if row["model"] not in pool["models"]:
            pool["models"].append(row["model"])
    for pool in pools.values():
        pool["load"] = min(1.0, pool["in_flight"] / pool["capacity"]) if pool["capacity"] else 0.0
    return sorted(pools.values(), key=lambda p: str(p["name"]))


async def _traffic_chart(ctx: SectionContext) -> dict[str, Any]:
    scope = ctx.viewer.scope_key_id
    earliest = await ctx.store.traffic.earliest(ctx.now - timedelta(seconds=_WINDOW_S), key_id=scope)
    since, bucket_s = time_window(ctx.now, earliest, longest_s=_WINDOW_S)
    breakdown = await ctx.store.traffic.breakdown(
        since, bucket_s, by="deployment", until=ctx.now, key_id=scope
    )
    busiest = sorted(breakdown.counts.items(), key=lambda item: -sum(item[1]))[:_CHART_LINES]
    lines = []
    for index, (name, counts) in enumerate(sorted(busiest)):
        rates = []
        for start, count in zip(breakdown.starts, counts, strict=True):
            end = min(start + timedelta(seconds=bucket_s), breakdown.until)
            rates.append(per_second(count, (end - start).total_seconds(), bucket_s))
        lines.append(series(name, rates, color(index)))
    return chart("line", breakdown.starts, lines, unit="/s", height=190)


def _find(ctx: SectionContext, deployment_id: str) -> tuple[ModelRoute, Deployment]:
    for route in ctx.runtime.snapshot.current.models.values():
        for deployment in route.deployments:
            if deployment.id == deployment_id:
                return route, deployment
    raise NotFound(f"No deployment '{deployment_id}'.")


def _action(name: str, disable: bool, done: str) -> ActionFunction:
    async def act(ctx: SectionContext, deployment_id: str) -> str:
        route, deployment = _find(ctx, deployment_id)
        routing = ctx.runtime.routing
        was_disabled = deployment.id in routing.disabled
        if disable:
            routing.disabled.add(deployment.id)
        else:
            routing.disabled.discard(deployment.id)
        detail = {
            "via": "ui",
            "actor_name": ctx.viewer.name,
            "model": route.name,
            "was_disabled": was_disabled,
            "in_flight": routing.load.get(deployment.id).in_flight,
        }
        try:
            await ctx.store.audit.record(
                name,
                deployment.id,
                actor=AuditActor(ctx.viewer.key_id, ctx.viewer.name),
                before={"disabled": was_disabled},
                after={"disabled": disable},
                detail=detail,
            )
        except StoreError:
            log.exception("operator action %s on %s applied but not audited", name, deployment.id)
            return f"{done} {deployment.id}, but the audit log could not be written (store unavailable)."
        return f"{done} {deployment.id}."

    return act


deployments_section = Section(
    path="deployments",
    title="Models & deployments",
    template="deployments.html",
    data=deployments_data,
    order=20,
    actions={
        "drain": _action("drain", True, "Draining"),
        "disable": _action("disable", True, "Disabled"),
        "enable": _action("enable", False, "Enabled"),
    },
)
