"""The admin API under ``/admin`` (FastAPI; OpenAPI at ``/admin/docs``), open to keys by role.

:class:`~interlock.server.guards.AdminGuard` checks the key from the headers before FastAPI reads a
body; the ``caller`` dependency every route takes then checks the route's permission in the one
route table (:mod:`interlock.server.admin_access`). The routes live by subject: keys
(``admin_keys``), orgs, teams, users and memberships (``admin_tenants``), operations
(``admin_ops``), audit (``admin_audit``) and reports (``admin_reports``). ``server.docs`` makes the
docs public, admin-only, or absent.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from interlock.core.errors import (
    AuthenticationFailed,
    Conflict,
    GatewayError,
    InvalidRequest,
    NotFound,
    ServiceUnavailable,
)
from interlock.server.admin_access import caller, check_route_table, permission_for
from interlock.server.admin_audit import register_audit_routes
from interlock.server.admin_budgets import register_budget_routes
from interlock.server.admin_keys import register_key_routes
from interlock.server.admin_ops import register_ops_routes
from interlock.server.admin_reports import register_report_routes
from interlock.server.admin_tenants import register_tenant_routes
from interlock.server.errors import error_body, error_headers
from interlock.server.guards import AdminGuard
from interlock.server.runtime import Runtime
from interlock.store import StoreConflict, StoreUnavailable

__all__ = ["create_admin_app"]

log = logging.getLogger("interlock.admin")


_DOC_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/openapi.json"})


def _error(err: GatewayError) -> Response:
    headers = {k.decode(): v.decode() for k, v in error_headers(err)}
    return Response(error_body(err), status_code=err.status, media_type="application/json", headers=headers)


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
        docs=frozenset() if server.docs == "public" else _DOC_PATHS,
        permission=lambda scope: permission_for(app, scope),
    )

    @app.exception_handler(GatewayError)
    async def on_gateway_error(request: Request, exc: GatewayError) -> Response:
        return _error(exc)

    @app.exception_handler(StoreUnavailable)
    async def on_store_down(request: Request, exc: StoreUnavailable) -> Response:
        return _error(ServiceUnavailable("The store is unavailable; try again shortly."))

    @app.exception_handler(StoreConflict)
    async def on_conflict(request: Request, exc: StoreConflict) -> Response:
        message = str(exc)
        field, sep, _ = message.partition(": ")
        return _error(Conflict(message + ".", param=field if sep else None))

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        loc = list(first["loc"])
        if loc and loc[0] in ("body", "query", "path"):
            loc = loc[1:]  # where the field was sent is plain from the request; its name is what counts
        where = ".".join(str(p) for p in loc)
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

    register_key_routes(app, runtime)
    register_tenant_routes(app, runtime)
    register_ops_routes(app, runtime)
    register_audit_routes(app, runtime)
    register_report_routes(app, runtime, caller)
    register_budget_routes(app, runtime, caller)
    check_route_table(app)
    return app
