"""Tenant isolation and key grants: which rows a caller reaches, and which keys it may make.

- ``admin``, ``operator``, ``viewer`` and the master key reach every row their role lets them read.
- A ``team_admin`` key reaches its team: keys with its ``team_id``, requests and spend recorded
  under that team, the team itself, its members, its org.
- A ``developer`` key reaches itself: its user's keys (or, for a key without a user, only
  itself), and the requests and spend of that user (or key).

Key grants stop escalation: a caller can give a key only a role it may grant (an admin any; a team
admin ``team_admin`` or ``developer`` keys of its own team; a developer ``developer`` keys of its own
user), never wider model or pool allow-lists than its own, and never a later expiry than its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from interlock.core.access import AllowList, is_glob
from interlock.core.context import Principal
from interlock.core.errors import NotFound, PermissionDenied
from interlock.store import KeyRecord

__all__ = ["KeyGrant", "Reach", "check_grant", "check_manage", "grantable_roles", "reach_of"]

_GLOBAL_ROLES = frozenset({"admin", "operator", "viewer"})


@dataclass(frozen=True, slots=True)
class Reach:
    """Which rows a caller reaches: everything, or one team's, or one user's (or one key's)."""

    everything: bool
    team_id: str | None = None
    user_id: str | None = None
    key_id: str | None = None

    def covers(self, key_id: str | None, user_id: str | None, team_id: str | None) -> bool:
        """Whether a row recorded under this key, user and team is within reach."""
        if self.everything:
            return True
        if self.team_id is not None:
            return team_id == self.team_id
        if self.user_id is not None:
            return user_id == self.user_id
        return key_id is not None and key_id == self.key_id


def reach_of(principal: Principal) -> Reach:
    """The rows ``principal`` reaches (see the module docstring)."""
    role = principal.role
    if principal.is_master or role in _GLOBAL_ROLES:
        return Reach(everything=True)
    if role == "team_admin" and principal.team_id is not None:
        return Reach(everything=False, team_id=principal.team_id)
    if principal.user_id is not None:
        return Reach(everything=False, user_id=principal.user_id)
    return Reach(everything=False, key_id=principal.key_id)


def grantable_roles(principal: Principal) -> frozenset[str]:
    """The roles ``principal`` may give a key it creates or changes."""
    if principal.is_master or principal.role == "admin":
        return frozenset({"admin", "operator", "team_admin", "developer", "viewer"})
    if principal.role == "team_admin":
        return frozenset({"team_admin", "developer"})
    if principal.role == "developer":
        return frozenset({"developer"})
    return frozenset()


@dataclass(frozen=True, slots=True)
class KeyGrant:
    """What a key would be given: its role, owner, allow-lists and expiry."""

    role: str
    user_id: str | None
    team_id: str | None
    models: tuple[str, ...]
    pools: tuple[str, ...]
    expires_at: datetime | None


def check_grant(principal: Principal, grant: KeyGrant) -> KeyGrant:
    """The grant, completed with the caller's own limits where it left them out; a 403 naming the
    field when the caller may not give it."""
    if grant.role not in grantable_roles(principal):
        raise PermissionDenied(
            f"role: a {principal.role or 'keyless'} key cannot give a key the role '{grant.role}'.",
            param="role",
        )
    if principal.is_master or principal.role == "admin":
        return grant
    if principal.role == "team_admin" and grant.team_id != principal.team_id:
        raise PermissionDenied(
            f"team_id: a team admin can make keys for its own team ('{principal.team_id}') only.",
            param="team_id",
        )
    if principal.role == "developer":
        if principal.user_id is None or grant.user_id != principal.user_id:
            raise PermissionDenied(
                "user_id: a developer can make keys for its own user only (a personal key is needed).",
                param="user_id",
            )
        if grant.team_id is not None and grant.team_id != principal.team_id:
            raise PermissionDenied(
                "team_id: a developer can make keys for its own team only.", param="team_id"
            )
    return KeyGrant(
        role=grant.role,
        user_id=grant.user_id,
        team_id=grant.team_id,
        models=_within(principal.models, grant.models, "models"),
        pools=_within(principal.pools, grant.pools, "pools"),
        expires_at=_no_later(principal, grant.expires_at),
    )


def check_manage(principal: Principal, record: KeyRecord) -> None:
    """A 404 unless ``principal`` reaches the key; a 403 when it may not change or revoke it."""
    reach = reach_of(principal)
    if not (reach.covers(record.id, record.user_id, record.team_id) or record.id == principal.key_id):
        raise NotFound(f"No active key with id '{record.id}'.")
    role = record.roles[0] if record.roles else "developer"
    if role not in grantable_roles(principal):
        raise PermissionDenied(f"A {principal.role} key cannot change a key with the role '{role}'.")


def _within(own: AllowList, asked: tuple[str, ...], field: str) -> tuple[str, ...]:
    if not own.patterns:
        return asked
    if not asked:
        return own.patterns  # left out: the caller's own limits
    for pattern in asked:
        if pattern in own.patterns or (not is_glob(pattern) and own.allows(pattern)):
            continue
        raise PermissionDenied(
            f"{field}: '{pattern}' is outside this key's own {field} ({', '.join(own.patterns)}).",
            param=field,
        )
    return asked


def _no_later(principal: Principal, asked: datetime | None) -> datetime | None:
    if principal.expires_at is None:
        return asked
    own = datetime.fromtimestamp(principal.expires_at, UTC)
    if asked is None:
        return own
    if asked > own:
        raise PermissionDenied(
            f"expires_at: a key cannot outlive the key that makes it (this one expires {own.isoformat()}).",
            param="expires_at",
        )
    return asked
