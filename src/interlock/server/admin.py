"""The admin API under ``/admin`` (FastAPI; OpenAPI at ``/admin/docs``). Master key only.

:class:`~interlock.server.guards.AdminGuard` checks the key from the headers before FastAPI reads a
body; the ``require_master`` dependency states the same rule on each route (and hands the route
its principal). ``server.docs`` makes the docs public, master-key only, or absent.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.exceptions import HTTPException
from starlette.responses import Response

from interlock.core.context import Principal
from interlock.core.errors import (
    AuthenticationFailed,
    GatewayError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
)
from interlock.routing.shared_modes import DeploymentMode, ModeStoreUnavailable
from interlock.routing.status import deployment_status
from interlock.server.admin_budgets import register_budget_routes
from interlock.server.admin_reports import register_report_routes
from interlock.server.errors import error_body, error_headers
from interlock.server.guards import AdminGuard
from interlock.server.runtime import Runtime
from interlock.store import KeyRecord, StoreError, StoreUnavailable, hash_key
from interlock.telemetry.request_log import record_view, request_filters

__all__ = ["create_admin_app"]

log = logging.getLogger("interlock.admin")


MAX_METADATA_BYTES = 16 * 1024
"""A key's ``metadata``, as JSON, is at most this long: it is stored and shown with the key."""

Role = Annotated[str, Field(min_length=1, max_length=64)]


class KeyCreate(BaseModel):
    """Body of ``POST /admin/keys``. Every string is bounded: they are stored and shown."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    roles: list[Role] = Field(default_factory=list, max_length=32)
    expires_at: datetime | None = None
    metadata: dict[str, Any] = Field(default_factory=dict, max_length=64)
    user_id: str | None = Field(None, max_length=200)
    team_id: str | None = Field(None, max_length=200)

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, value: dict[str, Any]) -> dict[str, Any]:
        size = len(orjson.dumps(value))
        if size > MAX_METADATA_BYTES:
            raise ValueError(f"is {size} bytes as JSON; the limit is {MAX_METADATA_BYTES}")
        return value


def _key_view(record: KeyRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "key_prefix": record.key_prefix,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "revoked_at": record.revoked_at,
        "last_used_at": record.last_used_at,
        "roles": list(record.roles),
        "user_id": record.user_id,
        "team_id": record.team_id,
        "metadata": dict(record.metadata),
    }


def _aware(value: datetime | None) -> datetime | None:
    """A timestamp without a zone is taken as UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _error(err: GatewayError) -> Response:
    headers = {k.decode(): v.decode() for k, v in error_headers(err)}
    return Response(error_body(err), status_code=err.status, media_type="application/json", headers=headers)


async def require_master(request: Request) -> Principal:
    """The dependency every admin route has: the caller holds the master key."""
    runtime: Runtime = request.app.state.runtime
    if runtime.settings.master_key_hash() is None:
        raise PermissionDenied("The admin API is disabled: no master key is configured.")
    auth = request.headers.get("authorization", "")
    key = auth[7:].strip() if auth[:7].lower() == "bearer " else request.headers.get("x-api-key")
    principal = await runtime.keys.authenticate(key)
    if not principal.is_master:
        raise PermissionDenied("The admin API needs the master key.")
    return principal


Master = Annotated[Principal, Depends(require_master)]


_DOC_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/openapi.json"})


def _known_deployment(runtime: Runtime, deployment_id: str) -> None:
    for route in runtime.snapshot.current.models.values():
        if any(d.id == deployment_id for d in route.deployments):
            return
    raise NotFound(f"No deployment '{deployment_id}'.")


async def _audit(
    runtime: Runtime, principal: Principal, action: str, target: str, was_disabled: bool
) -> bool:
    """Record an operator action; the change stands even when the store cannot take the entry."""
    if runtime.store is None:
        return False
    detail = {"via": "api", "actor_name": principal.name, "was_disabled": was_disabled}
    try:
        await runtime.store.audit.record(action, target, actor_key_id=principal.key_id, detail=detail)
    except StoreError:
        log.exception("admin %s of %s applied but not audited", action, target)
        return False
    return True


def create_admin_app(runtime: Runtime) -> FastAPI:
    """The admin sub-application, bound to one runtime."""
    server = runtime.settings.server
    served = server.docs != "off"
    app = FastAPI(
        title="Interlock admin API",
        version="1",
        docs_url="/docs" if served else None,
        redoc_url=None,
        openapi_url="/openapi.json" if served else None,
    )
    app.state.runtime = runtime
    public = _DOC_PATHS if server.docs == "public" else frozenset()
    app.add_middleware(
        AdminGuard,
        keys=runtime.keys,
        enabled=runtime.settings.master_key_hash() is not None,
        limit=server.body_limits.admin,
        public=public,
    )

    def store() -> Any:
        if runtime.store is None:
            raise ServiceUnavailable("The store is not open yet.")
        return runtime.store

    @app.post("/keys", status_code=201)
    async def create_key(body: KeyCreate, _: Master) -> Response:
        """Create a key. The plaintext key is in this response and nowhere else, ever."""
        record, plaintext = await store().keys.create(
            body.name,
            roles=tuple(body.roles),
            metadata=body.metadata,
            expires_at=_aware(body.expires_at),
            user_id=body.user_id,
            team_id=body.team_id,
        )
        runtime.keys.remember(record, hash_key(plaintext))
        return _json({**_key_view(record), "key": plaintext}, status=201)

    @app.get("/keys")
    async def list_keys(_: Master, include_revoked: bool = False) -> Response:
        records = await store().keys.list(include_revoked=include_revoked)
        return _json({"object": "list", "data": [_key_view(r) for r in records]})

    @app.delete("/keys/{key_id}")
    async def revoke_key(key_id: str, _: Master) -> Response:
        if not await store().keys.revoke(key_id):
            raise NotFound(f"No active key with id '{key_id}'.")
        runtime.keys.forget(key_id)
        return _json({"id": key_id, "revoked": True})

    @app.get("/deployments")
    async def list_deployments(_: Master) -> Response:
        """Every deployment: breaker state, error rate, latency, in-flight, concurrency limit."""
        data = deployment_status(runtime.snapshot.current, runtime.routing)
        return _json({"object": "list", "data": data})

    async def set_mode(deployment_id: str, mode: DeploymentMode, principal: Principal) -> Response:
        _known_deployment(runtime, deployment_id)
        before = runtime.modes.modes.get(deployment_id, "enabled")
        try:
            await runtime.modes.set(deployment_id, mode)
        except ModeStoreUnavailable:
            raise ServiceUnavailable(
                f"Deployment '{deployment_id}' is {mode} in this process, but the shared store did not "
                "take the change: other processes keep the old mode. Try again."
            ) from None
        action = {"enabled": "enable", "draining": "drain", "disabled": "disable"}[mode]
        audited = await _audit(runtime, principal, action, deployment_id, before != "enabled")
        return _json({"id": deployment_id, "mode": mode, "disabled": mode != "enabled", "audited": audited})

    @app.post("/deployments/{deployment_id:path}/disable")
    async def disable_deployment(deployment_id: str, principal: Master) -> Response:
        """Take a deployment out of rotation in every process of every instance (requests in flight
        finish). Audited; ``audited`` is false when the change was applied but the audit log could
        not be written."""
        return await set_mode(deployment_id, "disabled", principal)

    @app.post("/deployments/{deployment_id:path}/drain")
    async def drain_deployment(deployment_id: str, principal: Master) -> Response:
        """Send a deployment no new requests, everywhere, while those in flight finish. Audited."""
        return await set_mode(deployment_id, "draining", principal)

    @app.post("/deployments/{deployment_id:path}/enable")
    async def enable_deployment(deployment_id: str, principal: Master) -> Response:
        """Bring a deployment back into rotation everywhere. Audited, as ``…/disable`` is."""
        return await set_mode(deployment_id, "enabled", principal)

    @app.get("/slo")
    async def slo(_: Master) -> Response:
        """Per model: objectives, compliance, goodput and latency percentiles over the rolling window."""
        return _json({"object": "list", "data": runtime.telemetry.slo_reports()})

    @app.get("/requests")
    async def requests(
        _: Master,
        model: str | None = None,
        status: str | None = None,
        key_id: str | None = None,
        client_request_id: str | None = Query(None, max_length=128),
        since: str | None = None,
        limit: int = Query(100, ge=1, le=1000),
    ) -> Response:
        """The request log, newest first. ``status``: ``ok``, ``error`` or a status code; ``since``: an
        ISO timestamp or a duration such as ``15m``, ``1h``, ``7d``; ``client_request_id``: the
        ``x-request-id`` a caller sent (several requests may share one)."""
        filters = request_filters(status, since)
        records = await store().requests.query(
            model=model, key_id=key_id, client_request_id=client_request_id, limit=limit, **filters
        )
        return _json({"object": "list", "data": [record_view(r) for r in records]})

    @app.get("/requests/{request_id}")
    async def request_detail(request_id: str, _: Master) -> Response:
        record = await store().requests.get(request_id)
        if record is None:
            raise NotFound(f"No request '{request_id}' in the log.")
        return _json(record_view(record))

    @app.exception_handler(GatewayError)
    async def on_gateway_error(request: Request, exc: GatewayError) -> Response:
        return _error(exc)

    @app.exception_handler(StoreUnavailable)
    async def on_store_down(request: Request, exc: StoreUnavailable) -> Response:
        return _error(ServiceUnavailable("The store is unavailable; try again shortly."))

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"] if p != "body")
        message = f"{where}: {first['msg']}" if where else str(first["msg"])
        return _error(InvalidRequest(message, param=where or None))

    @app.exception_handler(HTTPException)
    async def on_http(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            return _error(NotFound(f"No admin route {request.url.path}."))
        if exc.status_code == 401:
            return _error(AuthenticationFailed(str(exc.detail)))
        err = GatewayError(str(exc.detail), status=exc.status_code)
        return _error(err)

    register_report_routes(app, runtime, require_master)
    register_budget_routes(app, runtime, require_master)
    return app
