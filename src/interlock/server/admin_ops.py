"""Operational admin routes: who am I, deployments (list, disable, drain, enable: shared by every
process), SLOs, the request log
and spend. The request log and spend are cut to the caller's reach (a team's, a user's or a key's
rows for team admins and developers); deployment actions are audited."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Query

from interlock.core.context import Principal
from interlock.core.errors import InvalidRequest, NotFound, ServiceUnavailable
from interlock.governance.scope import Reach, reach_of
from interlock.routing.shared_modes import DeploymentMode, ModeStoreUnavailable
from interlock.routing.status import deployment_status
from interlock.server.admin_access import Caller, actor_of, json_response, open_store
from interlock.server.runtime import Runtime
from interlock.store import SpendLine, StoreError
from interlock.telemetry.request_log import parse_since, record_view, request_filters

__all__ = ["register_ops_routes"]

log = logging.getLogger("interlock.admin")


def _scope_filters(reach: Reach) -> dict[str, str]:
    """Query filters that keep a caller to its reach (none for a caller who reaches everything)."""
    if reach.everything:
        return {}
    if reach.team_id is not None:
        return {"team_id": reach.team_id}
    if reach.user_id is not None:
        return {"user_id": reach.user_id}
    return {"key_id": reach.key_id or ""}


def _line(line: SpendLine) -> dict[str, Any]:
    return {
        "name": line.name,
        "requests": line.requests,
        "errors": line.errors,
        "prompt_tokens": line.prompt_tokens,
        "completion_tokens": line.completion_tokens,
        "cached_tokens": line.cached_tokens,
        "cost": line.cost,
    }


def _whoami(principal: Principal) -> dict[str, Any]:
    return {
        "key_id": principal.key_id,
        "name": principal.name,
        "master": principal.is_master,
        "role": principal.role,
        "user_id": principal.user_id,
        "team_id": principal.team_id,
        "org_id": principal.org_id,
        "models": list(principal.models.patterns),
        "pools": list(principal.pools.patterns),
        "expires_at": (
            datetime.fromtimestamp(principal.expires_at, UTC).isoformat() if principal.expires_at else None
        ),
    }


def register_ops_routes(app: FastAPI, runtime: Runtime) -> None:
    """Add the operational routes to the admin app."""

    def known_deployment(deployment_id: str) -> None:
        for route in runtime.snapshot.current.models.values():
            if any(d.id == deployment_id for d in route.deployments):
                return
        raise NotFound(f"No deployment '{deployment_id}'.")

    async def audited(principal: Principal, action: str, target: str, was: bool, now: bool) -> bool:
        """Record a deployment action; the change stands even when the store cannot take the entry."""
        if runtime.store is None:
            return False
        try:
            await runtime.store.audit.record(
                action,
                target,
                actor=actor_of(principal),
                before={"disabled": was},
                after={"disabled": now},
                detail={"via": "api"},
            )
        except StoreError:
            log.exception("admin %s of %s applied but not audited", action, target)
            return False
        return True

    @app.get("/whoami")
    async def whoami(principal: Caller) -> Any:
        """The calling key: its role, owner, allow-lists and expiry."""
        return json_response(_whoami(principal))

    @app.get("/deployments")
    async def list_deployments(_: Caller) -> Any:
        """Every deployment: breaker state, error rate, latency, in-flight, concurrency limit."""
        data = deployment_status(runtime.snapshot.current, runtime.routing)
        return json_response({"object": "list", "data": data})

    async def set_mode(deployment_id: str, mode: DeploymentMode, principal: Principal) -> Any:
        known_deployment(deployment_id)
        was_disabled = deployment_id in runtime.modes.modes
        try:
            await runtime.modes.set(deployment_id, mode)
        except ModeStoreUnavailable:
            raise ServiceUnavailable(
                f"Deployment '{deployment_id}' is {mode} in this process, but the shared store did not "
                "take the change: other processes keep the old mode. Try again."
            ) from None
        action = {"enabled": "enable", "draining": "drain", "disabled": "disable"}[mode]
        ok = await audited(principal, action, deployment_id, was_disabled, mode != "enabled")
        return json_response(
            {"id": deployment_id, "mode": mode, "disabled": mode != "enabled", "audited": ok}
        )

    @app.post("/deployments/{deployment_id:path}/disable")
    async def disable_deployment(deployment_id: str, principal: Caller) -> Any:
        """Take a deployment out of rotation in every process of every instance (requests in flight
        finish). Audited; ``audited`` is false when the change was applied but the audit log could
        not be written."""
        return await set_mode(deployment_id, "disabled", principal)

    @app.post("/deployments/{deployment_id:path}/drain")
    async def drain_deployment(deployment_id: str, principal: Caller) -> Any:
        """Send a deployment no new requests, everywhere, while those in flight finish. Audited."""
        return await set_mode(deployment_id, "draining", principal)

    @app.post("/deployments/{deployment_id:path}/enable")
    async def enable_deployment(deployment_id: str, principal: Caller) -> Any:
        """Bring a deployment back into rotation everywhere. Audited, as ``…/disable`` is."""
        return await set_mode(deployment_id, "enabled", principal)

    @app.get("/slo")
    async def slo(_: Caller) -> Any:
        """Per model: objectives, compliance, goodput and latency percentiles over the rolling window."""
        return json_response({"object": "list", "data": runtime.telemetry.slo_reports()})

    @app.get("/requests")
    async def requests(
        principal: Caller,
        model: str | None = None,
        status: str | None = None,
        key_id: str | None = None,
        client_request_id: str | None = Query(None, max_length=128),
        since: str | None = None,
        limit: int = Query(100, ge=1, le=1000),
    ) -> Any:
        """The request log, newest first, of the requests the caller reaches. ``status``: ``ok``,
        ``error`` or a status code; ``since``: an ISO timestamp or a duration such as ``15m``,
        ``1h``, ``7d``; ``client_request_id``: the ``x-request-id`` a caller sent."""
        filters = {**request_filters(status, since), **_scope_filters(reach_of(principal))}
        if key_id is not None:
            if filters.get("key_id", key_id) != key_id:
                return json_response({"object": "list", "data": []})
            filters["key_id"] = key_id
        records = await open_store(runtime).requests.query(
            model=model, client_request_id=client_request_id, limit=limit, **filters
        )
        return json_response({"object": "list", "data": [record_view(r) for r in records]})

    @app.get("/requests/{request_id}")
    async def request_detail(request_id: str, principal: Caller) -> Any:
        record = await open_store(runtime).requests.get(request_id)
        if record is None or not reach_of(principal).covers(record.key_id, record.user_id, record.team_id):
            raise NotFound(f"No request '{request_id}' in the log.")
        return json_response(record_view(record))

    @app.get("/spend")
    async def spend(
        principal: Caller,
        since: str = "7d",
        until: str | None = None,
        limit: int = Query(100, ge=1, le=1000),
    ) -> Any:
        """Cost, tokens and requests over ``since`` .. ``until`` (durations like ``7d`` or ISO
        timestamps), in total and by key, model and team, over the requests the caller reaches."""
        start = parse_since(since)
        end = parse_since(until) if until else None
        if end is not None and end <= start:
            raise InvalidRequest("'until' must be later than 'since'.", param="until")
        summary = await open_store(runtime).spend.summary(
            start, end, limit=limit, **_scope_filters(reach_of(principal))
        )
        return json_response(
            {
                "since": summary.since,
                "until": summary.until,
                "total": _line(summary.total),
                "by_key": [_line(x) for x in summary.by_key],
                "by_model": [_line(x) for x in summary.by_model],
                "by_team": [_line(x) for x in summary.by_team],
            }
        )
