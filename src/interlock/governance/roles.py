"""Roles and what each may do: the one table every permission check reads.

=============  ======================================================================================
``admin``      everything, gateway-wide
``operator``   reads everything operational (deployments, SLOs, request log, spend, reports, audit)
               and takes deployments out of rotation or back
``team_admin`` its team: the team's keys (create, change, revoke), request log and spend
``developer``  itself: its own keys (developer keys only), request log and spend
``viewer``     reads everything, changes nothing
=============  ======================================================================================

The master key is a break-glass ``admin``. Every key may call the model API (``/v1``) within its
model and pool allow-lists whatever its role: a role governs ``/admin``. Which rows a permission
reaches (a team's, a user's, everyone's) is :mod:`interlock.governance.scope`'s business.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, get_args

from interlock.core.context import Principal
from interlock.core.errors import PermissionDenied

__all__ = [
    "PERMISSIONS",
    "ROLES",
    "ROLE_PERMISSIONS",
    "Permission",
    "Role",
    "allowed",
    "require",
]

Role = Literal["admin", "operator", "team_admin", "developer", "viewer"]
ROLES: tuple[Role, ...] = get_args(Role)

Permission = Literal[
    "self.read",
    "keys.read",
    "keys.write",
    "tenants.read",
    "tenants.write",
    "deployments.read",
    "deployments.write",
    "slo.read",
    "requests.read",
    "spend.read",
    "reports.read",
    "audit.read",
]
PERMISSIONS: tuple[Permission, ...] = get_args(Permission)

_READ_OPERATIONAL: frozenset[Permission] = frozenset(
    {"deployments.read", "slo.read", "requests.read", "spend.read", "reports.read", "audit.read"}
)

ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    "admin": frozenset(PERMISSIONS),
    "operator": _READ_OPERATIONAL | {"self.read", "deployments.write"},
    "team_admin": frozenset(
        {"self.read", "keys.read", "keys.write", "tenants.read", "requests.read", "spend.read"}
    ),
    "developer": frozenset({"self.read", "keys.read", "keys.write", "requests.read", "spend.read"}),
    "viewer": _READ_OPERATIONAL | {"self.read", "keys.read", "tenants.read"},
}
"""What each role may do. ``team_admin`` and ``developer`` reach only their team's or their own rows."""


def allowed(principal: Principal, permission: Permission) -> bool:
    """Whether ``principal`` holds ``permission`` (the master key holds every one)."""
    if principal.is_master:
        return True
    return any(permission in ROLE_PERMISSIONS.get(role, frozenset()) for role in principal.roles)  # type: ignore[call-overload]


def require(principal: Principal, permission: Permission) -> None:
    """Raise a 403 naming the permission unless ``principal`` holds it."""
    if not allowed(principal, permission):
        role = principal.role or "no role"
        raise PermissionDenied(f"This key's role ({role}) does not allow {permission}.")
