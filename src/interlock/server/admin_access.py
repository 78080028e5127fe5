"""Who may call which admin route: the route table, and the dependency that enforces it.

Every ``/admin`` route names its permission here, in one table; :func:`caller` (the dependency each
route takes) authenticates the key and looks its route up. A route missing from the table is
refused to everyone, and :func:`check_route_table` stops the admin app from being built at all, so
a new route cannot ship open by mistake. Which rows a permitted caller then reaches is
:mod:`interlock.governance.scope`'s business.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.routing import APIRoute
from starlette.responses import Response
from starlette.routing import Match

from interlock.core.context import Principal
from interlock.core.errors import PermissionDenied, ServiceUnavailable
from interlock.governance.roles import Permission, require
from interlock.server.asgi import Scope, api_key_from
from interlock.server.runtime import Runtime
from interlock.store import AuditActor, Store

__all__ = [
    "ROUTE_PERMISSIONS",
    "Caller",
    "actor_of",
    "caller",
    "check_route_table",
    "json_response",
    "open_store",
    "permission_for",
]

ROUTE_PERMISSIONS: Mapping[tuple[str, str], Permission] = {
    ("GET", "/whoami"): "self.read",
    # keys: team admins and developers reach their team's or their own (governance.scope)
    ("POST", "/keys"): "keys.write",
    ("GET", "/keys"): "keys.read",
    ("GET", "/keys/{key_id}"): "keys.read",
    ("PATCH", "/keys/{key_id}"): "keys.write",
    ("DELETE", "/keys/{key_id}"): "keys.write",
    # the tenant tree
    ("POST", "/orgs"): "tenants.write",
    ("GET", "/orgs"): "tenants.read",
    ("GET", "/orgs/{org_id}"): "tenants.read",
    ("PATCH", "/orgs/{org_id}"): "tenants.write",
    ("DELETE", "/orgs/{org_id}"): "tenants.write",
    ("POST", "/teams"): "tenants.write",
    ("GET", "/teams"): "tenants.read",
    ("GET", "/teams/{team_id}"): "tenants.read",
    ("PATCH", "/teams/{team_id}"): "tenants.write",
    ("DELETE", "/teams/{team_id}"): "tenants.write",
    ("GET", "/teams/{team_id}/members"): "tenants.read",
    ("PUT", "/teams/{team_id}/members/{user_id}"): "tenants.write",
    ("DELETE", "/teams/{team_id}/members/{user_id}"): "tenants.write",
    ("POST", "/users"): "tenants.write",
    ("GET", "/users"): "tenants.read",
    ("GET", "/users/{user_id}"): "tenants.read",
    ("PATCH", "/users/{user_id}"): "tenants.write",
    ("DELETE", "/users/{user_id}"): "tenants.write",
    # operations
    ("GET", "/deployments"): "deployments.read",
    ("POST", "/deployments/{deployment_id:path}/disable"): "deployments.write",
    ("POST", "/deployments/{deployment_id:path}/enable"): "deployments.write",
    ("POST", "/deployments/{deployment_id:path}/drain"): "deployments.write",
    ("GET", "/slo"): "slo.read",
    ("GET", "/requests"): "requests.read",
    ("GET", "/requests/{request_id}"): "requests.read",
    ("GET", "/spend"): "spend.read",
    ("GET", "/reports/summary"): "reports.read",
    ("GET", "/reports/spend"): "reports.read",
    ("GET", "/budgets"): "reports.read",
    ("GET", "/audit"): "audit.read",
    ("GET", "/audit/verify"): "audit.read",
}
"""(method, route path) → the permission a caller needs. See ``governance.roles`` for who holds it."""


async def caller(request: Request) -> Principal:
    """The dependency every admin route takes: the caller's principal, holding the route's permission."""
    runtime: Runtime = request.app.state.runtime
    principal = await runtime.keys.authenticate(api_key_from(request.scope))
    route = request.scope.get("route")
    path = route.path if isinstance(route, APIRoute) else ""
    permission = ROUTE_PERMISSIONS.get((request.method, path))
    if permission is None:
        raise PermissionDenied(f"No permission is defined for {request.method} {path or request.url.path}.")
    require(principal, permission)
    return principal


Caller = Annotated[Principal, Depends(caller)]


def permission_for(app: FastAPI, scope: Scope) -> Permission | None:
    """The permission the route ``scope`` asks for needs; ``None`` when no API route matches it
    (FastAPI answers those: 404, 405, the docs). The admin guard checks it from the headers."""
    for route in app.router.routes:
        if isinstance(route, APIRoute):
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return ROUTE_PERMISSIONS.get((scope["method"], route.path))
    return None


def check_route_table(app: FastAPI) -> None:
    """Raise unless every API route of ``app`` has an entry in :data:`ROUTE_PERMISSIONS` and
    takes the :func:`caller` dependency, and every entry names a route."""
    seen: set[tuple[str, str]] = set()
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        guarded = any(dep.call is caller for dep in route.dependant.dependencies)
        for method in route.methods or ():
            key = (method, route.path)
            seen.add(key)
            if key not in ROUTE_PERMISSIONS:
                raise RuntimeError(f"admin route {method} {route.path} has no entry in ROUTE_PERMISSIONS")
            if not guarded:
                raise RuntimeError(f"admin route {method} {route.path} does not take the caller dependency")
    stale = set(ROUTE_PERMISSIONS) - seen
    if stale:
        raise RuntimeError(f"ROUTE_PERMISSIONS names routes that do not exist: {sorted(stale)}")


def actor_of(principal: Principal) -> AuditActor:
    """The principal as the audit log names it."""
    return AuditActor(principal.key_id, principal.name)


def open_store(runtime: Runtime) -> Store:
    """The runtime's store; a 503 while it is not open."""
    if runtime.store is None:
        raise ServiceUnavailable("The store is not open yet.")
    return runtime.store


def json_response(body: Any, status: int = 200) -> Response:
    """``body`` as a JSON response (orjson: datetimes as ISO text)."""
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
