"""The tenant tree: organizations, their teams and users, and who is a member of which team.

An org holds teams and users; a user belongs to one org and may be a member of any of its teams,
with a role there (``team_admin`` or ``developer``). Ids are made here (``org_…``, ``team_…``,
``user_…``), never taken from a caller.

Deleting is a soft delete (``deleted_at``): the row stays for the audit log and the request log to
refer to, the name becomes free again, and every key under it stops working. Deleting an org
deletes its teams and users too; deleting a team or a user ends its memberships. Every change bumps
``keys_revision`` (gateways reload their keys), and, when an ``actor`` is given, is audited with the
state before and after in the same transaction.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from interlock.store.audit import AuditActor, append_entry
from interlock.store.engine import Database
from interlock.store.errors import StoreConflict
from interlock.store.revision import bump_keys_revision
from interlock.store.schema import orgs, team_members, teams, users

__all__ = [
    "MEMBER_ROLES",
    "Membership",
    "OrgRecord",
    "TeamRecord",
    "TenantRepository",
    "UserRecord",
    "record_view",
]

MEMBER_ROLES = ("team_admin", "developer")
"""The roles a user may hold in a team."""


@dataclass(frozen=True, slots=True)
class OrgRecord:
    """One organization."""

    id: str
    name: str
    created_at: datetime
    disabled: bool = False
    deleted_at: datetime | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TeamRecord:
    """One team of an org."""

    id: str
    org_id: str
    name: str
    created_at: datetime
    disabled: bool = False
    deleted_at: datetime | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UserRecord:
    """One person, in one org."""

    id: str
    org_id: str
    email: str
    name: str
    created_at: datetime
    disabled: bool = False
    deleted_at: datetime | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Membership:
    """A user's membership of a team, and the role they hold there."""

    team_id: str
    user_id: str
    role: str
    created_at: datetime


Record = OrgRecord | TeamRecord | UserRecord


def record_view(record: Record | Membership) -> dict[str, Any]:
    """The record as a JSON-ready dict (what the admin API shows and the audit log keeps)."""
    view = {name: getattr(record, name) for name in record.__dataclass_fields__}
    if "metadata" in view:
        view["metadata"] = dict(view["metadata"])
    return view


@dataclass(frozen=True, slots=True)
class _Kind:
    table: Table
    record: type[OrgRecord] | type[TeamRecord] | type[UserRecord]
    prefix: str
    noun: str


_ORG = _Kind(orgs, OrgRecord, "org_", "org")
_TEAM = _Kind(teams, TeamRecord, "team_", "team")
_USER = _Kind(users, UserRecord, "user_", "user")


class TenantRepository:
    """Orgs, teams, users and memberships in their tables."""

    __slots__ = ("_db",)

    def __init__(self, db: Database) -> None:
        self._db = db

    # creation

    async def create_org(
        self, name: str, *, metadata: Mapping[str, Any] | None = None, actor: AuditActor | None = None
    ) -> OrgRecord:
        """A new org; :class:`StoreConflict` when a live org has this name."""
        clean = _required(name, "name")
        values: dict[str, Any] = {"name": clean, "metadata": dict(metadata or {})}
        async with self._db.write() as conn:
            await _unique(conn, _ORG, "name", clean, orgs.c.name == clean)
            record = await _insert(conn, _ORG, values, actor)
        assert isinstance(record, OrgRecord)
        return record

    async def create_team(
        self,
        org_id: str,
        name: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        actor: AuditActor | None = None,
    ) -> TeamRecord:
        """A new team in a live org."""
        clean = _required(name, "name")
        values: dict[str, Any] = {"org_id": org_id, "name": clean, "metadata": dict(metadata or {})}
        async with self._db.write() as conn:
            await _live(conn, _ORG, org_id, "org_id")
            where = (teams.c.org_id == org_id) & (teams.c.name == clean)
            await _unique(conn, _TEAM, "name", clean, where)
            record = await _insert(conn, _TEAM, values, actor)
        assert isinstance(record, TeamRecord)
        return record

    async def create_user(
        self,
        org_id: str,
        email: str,
        name: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        actor: AuditActor | None = None,
    ) -> UserRecord:
        """A new user in a live org; emails are unique among live users (compared as lower case)."""
        address = _required(email, "email").lower()
        values: dict[str, Any] = {
            "org_id": org_id,
            "email": address,
            "name": _required(name, "name"),
            "metadata": dict(metadata or {}),
        }
        async with self._db.write() as conn:
            await _live(conn, _ORG, org_id, "org_id")
            await _unique(conn, _USER, "email", address, users.c.email == address)
            record = await _insert(conn, _USER, values, actor)
        assert isinstance(record, UserRecord)
        return record

    # reading

    async def get_org(self, org_id: str, *, include_deleted: bool = False) -> OrgRecord | None:
        found = await self._get(_ORG, org_id, include_deleted)
        return found if isinstance(found, OrgRecord) else None

    async def get_team(self, team_id: str, *, include_deleted: bool = False) -> TeamRecord | None:
        found = await self._get(_TEAM, team_id, include_deleted)
        return found if isinstance(found, TeamRecord) else None

    async def get_user(self, user_id: str, *, include_deleted: bool = False) -> UserRecord | None:
        found = await self._get(_USER, user_id, include_deleted)
        return found if isinstance(found, UserRecord) else None

    async def list_orgs(self, *, org_ids: Sequence[str] | None = None) -> list[OrgRecord]:
        """Live orgs, oldest first; only ``org_ids`` when given."""
        where: list[ColumnElement[bool]] = [orgs.c.id.in_(list(org_ids))] if org_ids is not None else []
        return [r for r in await self._list(_ORG, where) if isinstance(r, OrgRecord)]

    async def list_teams(
        self, *, org_id: str | None = None, team_ids: Sequence[str] | None = None
    ) -> list[TeamRecord]:
        """Live teams, oldest first; of one org, or only ``team_ids``, when given."""
        where: list[ColumnElement[bool]] = []
        if org_id is not None:
            where.append(teams.c.org_id == org_id)
        if team_ids is not None:
            where.append(teams.c.id.in_(list(team_ids)))
        return [r for r in await self._list(_TEAM, where) if isinstance(r, TeamRecord)]

    async def list_users(
        self,
        *,
        org_id: str | None = None,
        team_id: str | None = None,
        user_ids: Sequence[str] | None = None,
    ) -> list[UserRecord]:
        """Live users, oldest first; of one org, members of one team, or only ``user_ids``."""
        where: list[ColumnElement[bool]] = []
        if org_id is not None:
            where.append(users.c.org_id == org_id)
        if team_id is not None:
            members = select(team_members.c.user_id).where(team_members.c.team_id == team_id)
            where.append(users.c.id.in_(members))
        if user_ids is not None:
            where.append(users.c.id.in_(list(user_ids)))
        return [r for r in await self._list(_USER, where) if isinstance(r, UserRecord)]

    async def members(self, team_id: str) -> list[Membership]:
        """The team's memberships, oldest first."""
        return await self._memberships(team_members.c.team_id == team_id)

    async def memberships_of(self, user_id: str) -> list[Membership]:
        """The user's memberships, oldest first."""
        return await self._memberships(team_members.c.user_id == user_id)

    async def all_memberships(self) -> list[Membership]:
        """Every membership (what key resolution reads)."""
        return await self._memberships(None)

    async def all_records(self) -> tuple[list[OrgRecord], list[TeamRecord], list[UserRecord]]:
        """Every org, team and user, deleted ones included (what key resolution reads)."""
        found: list[list[Any]] = []
        async with self._db.read() as conn:
            for kind in (_ORG, _TEAM, _USER):
                rows = (await conn.execute(select(kind.table))).all()
                found.append([_to_record(kind, row._mapping) for row in rows])
        return found[0], found[1], found[2]

    # changes

    async def update_org(
        self, org_id: str, changes: Mapping[str, Any], *, actor: AuditActor | None = None
    ) -> OrgRecord | None:
        """Change ``name``, ``disabled`` or ``metadata``; ``None`` when no live org has this id."""
        found = await self._update(_ORG, org_id, changes, actor)
        return found if isinstance(found, OrgRecord) else None

    async def update_team(
        self, team_id: str, changes: Mapping[str, Any], *, actor: AuditActor | None = None
    ) -> TeamRecord | None:
        found = await self._update(_TEAM, team_id, changes, actor)
        return found if isinstance(found, TeamRecord) else None

    async def update_user(
        self, user_id: str, changes: Mapping[str, Any], *, actor: AuditActor | None = None
    ) -> UserRecord | None:
        found = await self._update(_USER, user_id, changes, actor)
        return found if isinstance(found, UserRecord) else None

    async def delete(self, kind: str, entity_id: str, *, actor: AuditActor | None = None) -> bool:
        """Soft-delete the ``org``, ``team`` or ``user`` with this id (and what hangs under it)."""
        spec = {"org": _ORG, "team": _TEAM, "user": _USER}[kind]
        now = datetime.now(UTC)
        async with self._db.write() as conn:
            before = await _fetch(conn, spec, entity_id, lock=True)
            if before is None:
                return False
            table = spec.table
            await conn.execute(update(table).where(table.c.id == entity_id).values(deleted_at=now))
            cascade: dict[str, Any] = {}
            if spec is _ORG:
                cascade = await _delete_org_contents(conn, entity_id, now)
            else:
                column = team_members.c.team_id if spec is _TEAM else team_members.c.user_id
                ended = (await conn.execute(delete(team_members).where(column == entity_id))).rowcount
                cascade = {"memberships_ended": ended}
            await bump_keys_revision(conn)
            if actor is not None:
                await append_entry(
                    conn,
                    f"{spec.noun}.delete",
                    entity_id,
                    actor=actor,
                    before=record_view(before),
                    after=None,
                    detail=cascade,
                )
        return True

    async def set_member(
        self, team_id: str, user_id: str, role: str, *, actor: AuditActor | None = None
    ) -> Membership:
        """Make the user a member of the team with ``role`` (or change their role there)."""
        if role not in MEMBER_ROLES:
            raise ValueError(f"role must be one of {', '.join(MEMBER_ROLES)}, got {role!r}")
        async with self._db.write() as conn:
            team = await _live(conn, _TEAM, team_id, "team_id")
            user = await _live(conn, _USER, user_id, "user_id")
            if team.org_id != user.org_id:  # type: ignore[union-attr]
                raise StoreConflict(f"user_id: user '{user_id}' is not in the org of team '{team_id}'")
            where = (team_members.c.team_id == team_id) & (team_members.c.user_id == user_id)
            row = (await conn.execute(select(team_members).where(where))).first()
            before = Membership(**row._mapping) if row is not None else None
            after = Membership(team_id, user_id, role, before.created_at if before else datetime.now(UTC))
            if before is None:
                await conn.execute(insert(team_members).values(**record_view(after)))
            else:
                await conn.execute(update(team_members).where(where).values(role=role))
            await bump_keys_revision(conn)
            if actor is not None:
                await append_entry(
                    conn,
                    "member.set",
                    f"{team_id}/{user_id}",
                    actor=actor,
                    before=record_view(before) if before else None,
                    after=record_view(after),
                )
        return after

    async def remove_member(self, team_id: str, user_id: str, *, actor: AuditActor | None = None) -> bool:
        """End the user's membership of the team; ``False`` when there was none."""
        where = (team_members.c.team_id == team_id) & (team_members.c.user_id == user_id)
        async with self._db.write() as conn:
            row = (await conn.execute(select(team_members).where(where))).first()
            if row is None:
                return False
            await conn.execute(delete(team_members).where(where))
            await bump_keys_revision(conn)
            if actor is not None:
                before = record_view(Membership(**row._mapping))
                await append_entry(conn, "member.remove", f"{team_id}/{user_id}", actor=actor, before=before)
        return True

    # helpers

    async def _get(self, kind: _Kind, entity_id: str, include_deleted: bool) -> Record | None:
        async with self._db.read() as conn:
            found = await _fetch(conn, kind, entity_id, include_deleted=include_deleted)
        return found

    async def _list(self, kind: _Kind, where: list[ColumnElement[bool]]) -> list[Record]:
        table = kind.table
        query = select(table).where(table.c.deleted_at.is_(None), *where)
        async with self._db.read() as conn:
            rows = (await conn.execute(query.order_by(table.c.created_at, table.c.id))).all()
        return [_to_record(kind, row._mapping) for row in rows]

    async def _memberships(self, where: ColumnElement[bool] | None) -> list[Membership]:
        c = team_members.c
        query = select(team_members).order_by(c.created_at, c.team_id, c.user_id)
        if where is not None:
            query = query.where(where)
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [Membership(**row._mapping) for row in rows]

    async def _update(
        self, kind: _Kind, entity_id: str, changes: Mapping[str, Any], actor: AuditActor | None
    ) -> Record | None:
        allowed = {"name", "disabled", "metadata"} | ({"email"} if kind is _USER else set())
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"cannot change {', '.join(sorted(unknown))} of a {kind.noun}")
        values = dict(changes)
        for text in ("name", "email"):
            if text in values:
                values[text] = _required(values[text], text)
        if "email" in values:
            values["email"] = values["email"].lower()
        table = kind.table
        async with self._db.write() as conn:
            before = await _fetch(conn, kind, entity_id, lock=True)
            if before is None:
                return None
            unique = ("email",) if kind is _USER else ("name",)
            for column in unique:
                if column in values and values[column] != getattr(before, column):
                    scope = table.c[column] == values[column]
                    if kind is _TEAM:
                        scope = scope & (table.c.org_id == getattr(before, "org_id", None))
                    await _unique(conn, kind, column, values[column], scope)
            if values:
                await conn.execute(update(table).where(table.c.id == entity_id).values(**values))
            after = await _fetch(conn, kind, entity_id)
            assert after is not None
            await bump_keys_revision(conn)
            if actor is not None:
                await append_entry(
                    conn,
                    f"{kind.noun}.update",
                    entity_id,
                    actor=actor,
                    before=record_view(before),
                    after=record_view(after),
                )
        return after


async def _insert(
    conn: AsyncConnection, kind: _Kind, values: dict[str, Any], actor: AuditActor | None
) -> Record:
    row = {"id": kind.prefix + secrets.token_hex(8), "created_at": datetime.now(UTC), **values}
    await conn.execute(insert(kind.table).values(**row))
    record = _to_record(kind, {"disabled": False, "deleted_at": None, **row})
    await bump_keys_revision(conn)
    if actor is not None:
        await append_entry(conn, f"{kind.noun}.create", record.id, actor=actor, after=record_view(record))
    return record


async def _fetch(
    conn: AsyncConnection, kind: _Kind, entity_id: str, *, include_deleted: bool = False, lock: bool = False
) -> Record | None:
    table = kind.table
    query = select(table).where(table.c.id == entity_id)
    if not include_deleted:
        query = query.where(table.c.deleted_at.is_(None))
    row = (await conn.execute(query.with_for_update() if lock else query)).first()
    return None if row is None else _to_record(kind, row._mapping)


async def _live(conn: AsyncConnection, kind: _Kind, entity_id: str, field_name: str) -> Record:
    found = await _fetch(conn, kind, entity_id)
    if found is None:
        raise StoreConflict(f"{field_name}: no {kind.noun} '{entity_id}'")
    return found


async def _unique(
    conn: AsyncConnection, kind: _Kind, field_name: str, value: str, where: ColumnElement[bool]
) -> None:
    table = kind.table
    query = select(func.count()).select_from(table).where(where, table.c.deleted_at.is_(None))
    if int((await conn.execute(query)).scalar_one()):
        raise StoreConflict(f"{field_name}: a {kind.noun} with {field_name} '{value}' exists already")


async def _delete_org_contents(conn: AsyncConnection, org_id: str, now: datetime) -> dict[str, Any]:
    counts: dict[str, Any] = {}
    team_ids = select(teams.c.id).where(teams.c.org_id == org_id)
    ended = await conn.execute(delete(team_members).where(team_members.c.team_id.in_(team_ids)))
    counts["memberships_ended"] = ended.rowcount
    for name, table in (("teams_deleted", teams), ("users_deleted", users)):
        live = (table.c.org_id == org_id) & table.c.deleted_at.is_(None)
        counts[name] = (await conn.execute(update(table).where(live).values(deleted_at=now))).rowcount
    return counts


def _to_record(kind: _Kind, m: Mapping[Any, Any]) -> Record:
    values = {name: m[name] for name in kind.record.__dataclass_fields__}
    values["metadata"] = dict(values["metadata"] or {})
    values["disabled"] = bool(values["disabled"])
    return kind.record(**values)


def _required(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string")
    return value.strip()
