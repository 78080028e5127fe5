"""From a stored key to the :class:`~interlock.core.context.Principal` it stands for.

A key resolves only while everything it hangs from is live: its user, its team and their org must
be neither disabled nor deleted, and a personal key scoped to a team needs its user to still be a
member there. A personal ``team_admin`` key acts as a ``developer`` once its user is no longer a
team admin of that team. Resolution runs when keys are loaded (never per request); allow-lists are
compiled here, once per key.

Keys made before teams existed may carry a ``team_id`` or ``user_id`` that names no row: such a key
resolves as if it had no owner (ids are made by the gateway, so no later team can take that id).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from interlock.core.access import AllowList
from interlock.core.context import Principal
from interlock.governance.roles import ROLES
from interlock.store import KeyRecord, OrgRecord, TeamRecord, TenantRepository, UserRecord

__all__ = ["EMPTY_DIRECTORY", "Directory", "resolve"]

_FALLBACK_ROLE = "developer"


@dataclass(frozen=True, slots=True)
class Directory:
    """The tenant tree as one process last loaded it: what key resolution looks up."""

    orgs: Mapping[str, OrgRecord]
    teams: Mapping[str, TeamRecord]
    users: Mapping[str, UserRecord]
    members: Mapping[tuple[str, str], str]
    """(team id, user id) → the user's role in the team."""

    @classmethod
    async def load(cls, tenants: TenantRepository) -> Directory:
        """Read every org, team, user and membership (a few small tables, on key reload only)."""
        orgs, teams, users = await tenants.all_records()
        memberships = await tenants.all_memberships()
        return cls(
            orgs={o.id: o for o in orgs},
            teams={t.id: t for t in teams},
            users={u.id: u for u in users},
            members={(m.team_id, m.user_id): m.role for m in memberships},
        )


EMPTY_DIRECTORY = Directory({}, {}, {}, {})


def _live(record: OrgRecord | TeamRecord | UserRecord | None) -> bool:
    return record is None or (not record.disabled and record.deleted_at is None)


def resolve(record: KeyRecord, directory: Directory) -> Principal | None:
    """The principal of an unrevoked key, or ``None`` when its owner is gone or disabled."""
    if record.revoked_at is not None:
        return None
    team = directory.teams.get(record.team_id) if record.team_id else None
    user = directory.users.get(record.user_id) if record.user_id else None
    org_id = user.org_id if user else team.org_id if team else record.org_id
    org = directory.orgs.get(org_id) if org_id else None
    if not (_live(team) and _live(user) and _live(org)):
        return None
    role = record.roles[0] if record.roles and record.roles[0] in ROLES else _FALLBACK_ROLE
    if team is not None and user is not None:
        held = directory.members.get((team.id, user.id))
        if held is None:
            return None  # a personal key for a team its user has left
        if role == "team_admin" and held != "team_admin":
            role = _FALLBACK_ROLE
    if role == "team_admin" and record.team_id is None:
        role = _FALLBACK_ROLE
    return Principal(
        key_id=record.id,
        name=record.name,
        user_id=record.user_id,
        team_id=record.team_id,
        org_id=org_id,
        roles=(role,),
        models=AllowList.of(record.models),
        pools=AllowList.of(record.pools),
        expires_at=record.expires_at.timestamp() if record.expires_at else None,
    )
