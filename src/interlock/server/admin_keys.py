"""``/admin/keys``: create, list, show, change and revoke API keys, each within the caller's reach.

A key belongs to a user (a personal key, optionally acting in one of the user's teams) or to a team
(a service key); only admins make keys with no owner. Who may give which role, allow-lists and
expiry is :func:`interlock.governance.scope.check_grant`; every change is audited with the key's
state before and after.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, field_validator

from interlock.core.context import Principal
from interlock.core.errors import InvalidRequest, NotFound
from interlock.governance.roles import Role
from interlock.governance.scope import KeyGrant, check_grant, check_manage, reach_of
from interlock.server.admin_access import Caller, actor_of, json_response, open_store
from interlock.server.runtime import Runtime
from interlock.store import KeyRecord, Store, hash_key, key_view

__all__ = ["KeyChange", "KeyCreate", "register_key_routes"]

MAX_METADATA_BYTES = 16 * 1024
"""A key's ``metadata``, as JSON, is at most this long: it is stored and shown with the key."""

Name = Annotated[str, Field(min_length=1, max_length=200)]
Pattern = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\s,]+$")]
Id = Annotated[str, Field(min_length=1, max_length=64)]


def _small(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None:
        size = len(orjson.dumps(value))
        if size > MAX_METADATA_BYTES:
            raise ValueError(f"is {size} bytes as JSON; the limit is {MAX_METADATA_BYTES}")
    return value


def _aware(value: datetime | None) -> datetime | None:
    """A timestamp without a zone is taken as UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class KeyCreate(BaseModel):
    """Body of ``POST /admin/keys``. Every string is bounded: they are stored and shown."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    role: Role = "developer"
    user_id: Id | None = None
    team_id: Id | None = None
    expires_at: datetime | None = None
    models: list[Pattern] = Field(default_factory=list, max_length=64)
    pools: list[Pattern] = Field(default_factory=list, max_length=64)
    metadata: dict[str, Any] = Field(default_factory=dict, max_length=64)

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _small(value) or {}


class KeyChange(BaseModel):
    """Body of ``PATCH /admin/keys/{id}``: only the fields given change. The owner never does."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    role: Role | None = None
    expires_at: datetime | None = None
    models: list[Pattern] | None = Field(None, max_length=64)
    pools: list[Pattern] | None = Field(None, max_length=64)
    metadata: dict[str, Any] | None = Field(None, max_length=64)

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _small(value)


async def _owner_org(store: Store, user_id: str | None, team_id: str | None) -> str | None:
    """Check the owner exists and hangs together; its org id. 400 naming the field otherwise."""
    team = await store.tenants.get_team(team_id) if team_id else None
    if team_id and team is None:
        raise InvalidRequest(f"team_id: no team '{team_id}'.", param="team_id")
    user = await store.tenants.get_user(user_id) if user_id else None
    if user_id and user is None:
        raise InvalidRequest(f"user_id: no user '{user_id}'.", param="user_id")
    if team is not None and user is not None:
        held = {m.team_id: m.role for m in await store.tenants.memberships_of(user.id)}
        if team.id not in held:
            raise InvalidRequest(
                f"team_id: user '{user.id}' is not a member of team '{team.id}'.", param="team_id"
            )
    return user.org_id if user else team.org_id if team else None


def _check_role_fits(role: str, user_id: str | None, team_id: str | None, member_role: str | None) -> None:
    if role == "team_admin" and team_id is None:
        raise InvalidRequest("role: a team_admin key needs a team_id.", param="role")
    if role == "team_admin" and user_id is not None and member_role != "team_admin":
        raise InvalidRequest(f"role: user '{user_id}' is not a team admin of team '{team_id}'.", param="role")


async def _member_role(store: Store, user_id: str | None, team_id: str | None) -> str | None:
    if user_id is None or team_id is None:
        return None
    return next((m.role for m in await store.tenants.memberships_of(user_id) if m.team_id == team_id), None)


async def _manageable(store: Store, principal: Principal, key_id: str) -> KeyRecord:
    record = await store.keys.get(key_id)
    if record is None or record.revoked_at is not None:
        raise NotFound(f"No active key with id '{key_id}'.")
    check_manage(principal, record)
    return record


def register_key_routes(app: FastAPI, runtime: Runtime) -> None:
    """Add the key routes to the admin app."""

    @app.post("/keys", status_code=201)
    async def create_key(body: KeyCreate, principal: Caller) -> Any:
        """Create a key. The plaintext key is in this response and nowhere else, ever."""
        store = open_store(runtime)
        grant = check_grant(
            principal,
            KeyGrant(
                role=body.role,
                user_id=body.user_id,
                team_id=body.team_id,
                models=tuple(body.models),
                pools=tuple(body.pools),
                expires_at=_aware(body.expires_at),
            ),
        )
        if not (principal.is_master or principal.role == "admin") and not (grant.user_id or grant.team_id):
            raise InvalidRequest("A key needs an owner: give user_id or team_id.", param="user_id")
        org_id = await _owner_org(store, grant.user_id, grant.team_id)
        member_role = await _member_role(store, grant.user_id, grant.team_id)
        _check_role_fits(grant.role, grant.user_id, grant.team_id, member_role)
        if grant.expires_at is not None and grant.expires_at <= datetime.now(UTC):
            raise InvalidRequest("expires_at: must be in the future.", param="expires_at")
        record, plaintext = await store.keys.create(
            body.name,
            roles=(grant.role,),
            metadata=body.metadata,
            expires_at=grant.expires_at,
            user_id=grant.user_id,
            team_id=grant.team_id,
            org_id=org_id,
            models=grant.models,
            pools=grant.pools,
            actor=actor_of(principal),
        )
        runtime.keys.remember(record, hash_key(plaintext))
        return json_response({**key_view(record), "key": plaintext}, status=201)

    @app.get("/keys")
    async def list_keys(principal: Caller, include_revoked: bool = False) -> Any:
        """Keys the caller reaches (all of them for admins, operators' excepted, and viewers; a
        team's for its team admins; a user's own for developers), never their secrets."""
        reach = reach_of(principal)
        keys = open_store(runtime).keys
        if reach.everything:
            records = await keys.list(include_revoked=include_revoked)
        else:
            records = await keys.list(
                include_revoked=include_revoked,
                team_id=reach.team_id,
                user_id=reach.user_id,
                key_ids=[principal.key_id],
            )
        return json_response({"object": "list", "data": [key_view(r) for r in records]})

    @app.get("/keys/{key_id}")
    async def get_key(key_id: str, principal: Caller) -> Any:
        record = await open_store(runtime).keys.get(key_id)
        reach = reach_of(principal)
        if record is None or not (
            reach.covers(record.id, record.user_id, record.team_id) or record.id == principal.key_id
        ):
            raise NotFound(f"No key with id '{key_id}'.")
        return json_response(key_view(record))

    @app.patch("/keys/{key_id}")
    async def update_key(key_id: str, body: KeyChange, principal: Caller) -> Any:
        """Change a key's name, role, expiry, allow-lists or metadata; gateways apply it within
        their refresh interval (this one at once)."""
        store = open_store(runtime)
        record = await _manageable(store, principal, key_id)
        given = body.model_dump(exclude_unset=True)
        if any(given.get(name, 0) is None for name in ("name", "role", "models", "pools", "metadata")):
            raise InvalidRequest("Only expires_at may be null (no expiry).", param="expires_at")
        current_role = record.roles[0] if record.roles else "developer"
        grant = check_grant(
            principal,
            KeyGrant(
                role=given.get("role", current_role),
                user_id=record.user_id,
                team_id=record.team_id,
                models=tuple(given.get("models", record.models)),
                pools=tuple(given.get("pools", record.pools)),
                expires_at=_aware(given["expires_at"]) if "expires_at" in given else record.expires_at,
            ),
        )
        if "role" in given:
            member_role = await _member_role(store, record.user_id, record.team_id)
            _check_role_fits(grant.role, record.user_id, record.team_id, member_role)
        changes: dict[str, Any] = {k: v for k, v in given.items() if k in ("name", "metadata")}
        changes.update(
            roles=[grant.role],
            models=list(grant.models),
            pools=list(grant.pools),
            expires_at=grant.expires_at,
        )
        updated = await store.keys.update(key_id, changes, actor=actor_of(principal))
        if updated is None:
            raise NotFound(f"No active key with id '{key_id}'.")
        runtime.keys.replace(updated)
        return json_response(key_view(updated))

    @app.delete("/keys/{key_id}")
    async def revoke_key(key_id: str, principal: Caller) -> Any:
        store = open_store(runtime)
        await _manageable(store, principal, key_id)
        if not await store.keys.revoke(key_id, actor=actor_of(principal)):
            raise NotFound(f"No active key with id '{key_id}'.")
        runtime.keys.forget(key_id)
        return json_response({"id": key_id, "revoked": True})
