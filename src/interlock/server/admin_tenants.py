"""``/admin/orgs``, ``/admin/teams``, ``/admin/users`` and team memberships.

Admins create, change and delete; viewers read everything; a team admin reads its own org, its own
team and that team's members. Disabling or deleting anything stops the keys under it at once in
this gateway and within the refresh interval in every other (``keys_revision``). Every change is
audited with the state before and after.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from interlock.core.context import Principal
from interlock.core.errors import InvalidRequest, NotFound
from interlock.governance.scope import reach_of
from interlock.server.admin_access import Caller, actor_of, json_response, open_store
from interlock.server.runtime import Runtime
from interlock.store import OrgRecord, StoreUnavailable, TeamRecord, UserRecord, record_view

__all__ = ["register_tenant_routes"]

log = logging.getLogger("interlock.admin")

Name = Annotated[str, Field(min_length=1, max_length=200)]
Email = Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]
Id = Annotated[str, Field(min_length=1, max_length=64)]
Metadata = Annotated[dict[str, Any], Field(max_length=64)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrgCreate(_Body):
    name: Name
    metadata: Metadata = Field(default_factory=dict)


class TeamCreate(_Body):
    org_id: Id
    name: Name
    metadata: Metadata = Field(default_factory=dict)


class UserCreate(_Body):
    org_id: Id
    email: Email
    name: Name
    metadata: Metadata = Field(default_factory=dict)


class Change(_Body):
    """Body of ``PATCH`` on an org or a team: only the fields given change."""

    name: Name | None = None
    disabled: bool | None = None
    metadata: Metadata | None = None


class UserChange(Change):
    email: Email | None = None


class MemberSet(_Body):
    role: Literal["team_admin", "developer"]


def _changes(body: Change) -> dict[str, Any]:
    given = body.model_dump(exclude_unset=True)
    nulls = sorted(k for k, v in given.items() if v is None)
    if nulls:
        raise InvalidRequest(f"{nulls[0]}: may not be null.", param=nulls[0])
    if not given:
        raise InvalidRequest("Give at least one field to change.")
    return given


def _one(data: list[Any], what: str, entity_id: str) -> Any:
    if not data:
        raise NotFound(f"No {what} '{entity_id}'.")
    return data[0]


def _listing(records: list[OrgRecord] | list[TeamRecord] | list[UserRecord]) -> Any:
    return json_response({"object": "list", "data": [record_view(r) for r in records]})


def register_tenant_routes(app: FastAPI, runtime: Runtime) -> None:
    """Add the org, team, user and membership routes to the admin app."""

    async def applied() -> None:
        """Resolve this gateway's keys again now (others follow within their refresh interval)."""
        try:
            await runtime.keys.refresh()
        except StoreUnavailable:
            log.warning("keys not reloaded after a tenant change: the store is unavailable")

    async def visible_orgs(principal: Principal, org_id: str | None = None) -> list[OrgRecord]:
        tenants = open_store(runtime).tenants
        reach = reach_of(principal)
        ids = None if reach.everything else [principal.org_id or ""]
        if org_id is not None:
            ids = [org_id] if ids is None or org_id in ids else []
        return await tenants.list_orgs(org_ids=ids)

    async def visible_teams(
        principal: Principal, team_id: str | None = None, org_id: str | None = None
    ) -> list[TeamRecord]:
        reach = reach_of(principal)
        ids = None if reach.everything else [reach.team_id or ""]
        if team_id is not None:
            ids = [team_id] if ids is None or team_id in ids else []
        return await open_store(runtime).tenants.list_teams(org_id=org_id, team_ids=ids)

    async def visible_users(
        principal: Principal,
        user_id: str | None = None,
        org_id: str | None = None,
        team_id: str | None = None,
    ) -> list[UserRecord]:
        reach = reach_of(principal)
        if not reach.everything:
            if team_id is not None and team_id != reach.team_id:
                return []
            team_id = reach.team_id or ""
        ids = [user_id] if user_id is not None else None
        return await open_store(runtime).tenants.list_users(org_id=org_id, team_id=team_id, user_ids=ids)

    # orgs

    @app.post("/orgs", status_code=201)
    async def create_org(body: OrgCreate, principal: Caller) -> Any:
        record = await open_store(runtime).tenants.create_org(
            body.name, metadata=body.metadata, actor=actor_of(principal)
        )
        return json_response(record_view(record), status=201)

    @app.get("/orgs")
    async def list_orgs(principal: Caller) -> Any:
        return _listing(await visible_orgs(principal))

    @app.get("/orgs/{org_id}")
    async def get_org(org_id: str, principal: Caller) -> Any:
        return json_response(record_view(_one(await visible_orgs(principal, org_id), "org", org_id)))

    @app.patch("/orgs/{org_id}")
    async def update_org(org_id: str, body: Change, principal: Caller) -> Any:
        tenants = open_store(runtime).tenants
        record = await tenants.update_org(org_id, _changes(body), actor=actor_of(principal))
        if record is None:
            raise NotFound(f"No org '{org_id}'.")
        await applied()
        return json_response(record_view(record))

    @app.delete("/orgs/{org_id}")
    async def delete_org(org_id: str, principal: Caller) -> Any:
        """Delete the org, its teams and its users; every key under them stops working."""
        if not await open_store(runtime).tenants.delete("org", org_id, actor=actor_of(principal)):
            raise NotFound(f"No org '{org_id}'.")
        await applied()
        return json_response({"id": org_id, "deleted": True})

    # teams

    @app.post("/teams", status_code=201)
    async def create_team(body: TeamCreate, principal: Caller) -> Any:
        tenants = open_store(runtime).tenants
        if await tenants.get_org(body.org_id) is None:
            raise InvalidRequest(f"org_id: no org '{body.org_id}'.", param="org_id")
        record = await tenants.create_team(
            body.org_id, body.name, metadata=body.metadata, actor=actor_of(principal)
        )
        return json_response(record_view(record), status=201)

    @app.get("/teams")
    async def list_teams(principal: Caller, org_id: str | None = None) -> Any:
        return _listing(await visible_teams(principal, org_id=org_id))

    @app.get("/teams/{team_id}")
    async def get_team(team_id: str, principal: Caller) -> Any:
        return json_response(record_view(_one(await visible_teams(principal, team_id), "team", team_id)))

    @app.patch("/teams/{team_id}")
    async def update_team(team_id: str, body: Change, principal: Caller) -> Any:
        tenants = open_store(runtime).tenants
        record = await tenants.update_team(team_id, _changes(body), actor=actor_of(principal))
        if record is None:
            raise NotFound(f"No team '{team_id}'.")
        await applied()
        return json_response(record_view(record))

    @app.delete("/teams/{team_id}")
    async def delete_team(team_id: str, principal: Caller) -> Any:
        """Delete the team and end its memberships; its keys stop working."""
        if not await open_store(runtime).tenants.delete("team", team_id, actor=actor_of(principal)):
            raise NotFound(f"No team '{team_id}'.")
        await applied()
        return json_response({"id": team_id, "deleted": True})

    @app.get("/teams/{team_id}/members")
    async def list_members(team_id: str, principal: Caller) -> Any:
        _one(await visible_teams(principal, team_id), "team", team_id)
        members = await open_store(runtime).tenants.members(team_id)
        return json_response({"object": "list", "data": [record_view(m) for m in members]})

    @app.put("/teams/{team_id}/members/{user_id}")
    async def set_member(team_id: str, user_id: str, body: MemberSet, principal: Caller) -> Any:
        """Make the user a member of the team with this role, or change their role there."""
        tenants = open_store(runtime).tenants
        if await tenants.get_team(team_id) is None:
            raise NotFound(f"No team '{team_id}'.")
        if await tenants.get_user(user_id) is None:
            raise NotFound(f"No user '{user_id}'.")
        membership = await tenants.set_member(team_id, user_id, body.role, actor=actor_of(principal))
        await applied()
        return json_response(record_view(membership))

    @app.delete("/teams/{team_id}/members/{user_id}")
    async def remove_member(team_id: str, user_id: str, principal: Caller) -> Any:
        """End the membership; the user's keys for this team stop working."""
        tenants = open_store(runtime).tenants
        if not await tenants.remove_member(team_id, user_id, actor=actor_of(principal)):
            raise NotFound(f"User '{user_id}' is not a member of team '{team_id}'.")
        await applied()
        return json_response({"team_id": team_id, "user_id": user_id, "removed": True})

    # users

    @app.post("/users", status_code=201)
    async def create_user(body: UserCreate, principal: Caller) -> Any:
        tenants = open_store(runtime).tenants
        if await tenants.get_org(body.org_id) is None:
            raise InvalidRequest(f"org_id: no org '{body.org_id}'.", param="org_id")
        record = await tenants.create_user(
            body.org_id, body.email, body.name, metadata=body.metadata, actor=actor_of(principal)
        )
        return json_response(record_view(record), status=201)

    @app.get("/users")
    async def list_users(principal: Caller, org_id: str | None = None, team_id: str | None = None) -> Any:
        return _listing(await visible_users(principal, org_id=org_id, team_id=team_id))

    @app.get("/users/{user_id}")
    async def get_user(user_id: str, principal: Caller) -> Any:
        return json_response(record_view(_one(await visible_users(principal, user_id), "user", user_id)))

    @app.patch("/users/{user_id}")
    async def update_user(user_id: str, body: UserChange, principal: Caller) -> Any:
        tenants = open_store(runtime).tenants
        record = await tenants.update_user(user_id, _changes(body), actor=actor_of(principal))
        if record is None:
            raise NotFound(f"No user '{user_id}'.")
        await applied()
        return json_response(record_view(record))

    @app.delete("/users/{user_id}")
    async def delete_user(user_id: str, principal: Caller) -> Any:
        """Delete the user and end their memberships; their personal keys stop working."""
        if not await open_store(runtime).tenants.delete("user", user_id, actor=actor_of(principal)):
            raise NotFound(f"No user '{user_id}'.")
        await applied()
        return json_response({"id": user_id, "deleted": True})
