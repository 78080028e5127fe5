"""A populated gateway for the governance tests: an org with teams A and B, users with roles there,
and one working key per role, all made through the admin API over loopback HTTP."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from interlock.store import Store
from tests.gateway_harness import Gateway

__all__ = ["Keys", "World", "build_world", "expired_key"]

MESSAGES = [{"role": "user", "content": "hi"}]


@dataclass
class Keys:
    """Plaintext keys (``None``: no key at all) by caller name."""

    by_name: dict[str, str | None] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)


@dataclass
class World:
    gateway: Gateway
    org: str
    team_a: str
    team_b: str
    users: dict[str, str]
    """Name → user id: ``ta`` (team admin of A), ``dev`` (developer in A), ``tb`` and ``devb`` (B)."""
    keys: Keys

    def master(self) -> httpx.Client:
        return self.gateway.admin()

    def as_key(self, name: str) -> httpx.Client:
        key = self.keys.by_name[name]
        headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
        return httpx.Client(base_url=self.gateway.url, headers=headers)

    def post(self, path: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
        """``POST /admin{path}`` as the master key; the answer, which must have ``status``."""
        with self.master() as admin:
            response = admin.post("/admin" + path, json=body)
        assert response.status_code == status, response.text
        return dict(response.json())

    def new_key(self, name: str, **fields: Any) -> tuple[str, str]:
        """A key made by the master key: (id, plaintext)."""
        created = self.post("/keys", {"name": name, **fields})
        return created["id"], created["key"]


def _unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def build_world(gateway: Gateway) -> World:
    world = World(gateway, "", "", "", {}, Keys())
    world.org = world.post("/orgs", {"name": _unique("acme")})["id"]
    world.team_a = world.post("/teams", {"org_id": world.org, "name": "team-a"})["id"]
    world.team_b = world.post("/teams", {"org_id": world.org, "name": "team-b"})["id"]
    for name, team, role in (
        ("ta", world.team_a, "team_admin"),
        ("dev", world.team_a, "developer"),
        ("dev2", world.team_a, "developer"),
        ("tb", world.team_b, "team_admin"),
        ("devb", world.team_b, "developer"),
    ):
        user = world.post(
            "/users", {"org_id": world.org, "email": f"{_unique(name)}@acme.test", "name": name}
        )
        world.users[name] = user["id"]
        with world.master() as admin:
            assert (
                admin.put(f"/admin/teams/{team}/members/{user['id']}", json={"role": role}).status_code == 200
            )
    plan: dict[str, dict[str, Any]] = {
        "admin": {"role": "admin"},
        "operator": {"role": "operator"},
        "viewer": {"role": "viewer"},
        "team_admin": {"role": "team_admin", "user_id": world.users["ta"], "team_id": world.team_a},
        "developer": {"role": "developer", "user_id": world.users["dev"], "team_id": world.team_a},
        "team_admin_b": {"role": "team_admin", "user_id": world.users["tb"], "team_id": world.team_b},
        "developer_b": {"role": "developer", "user_id": world.users["devb"], "team_id": world.team_b},
        "service_a": {"role": "developer", "team_id": world.team_a},
        "revoked": {"role": "admin"},
    }
    for name, fields in plan.items():
        key_id, key = world.new_key(name, **fields)
        world.keys.by_name[name] = key
        world.keys.ids[name] = key_id
    with world.master() as admin:
        assert admin.delete(f"/admin/keys/{world.keys.ids['revoked']}").status_code == 200
    world.keys.by_name["master"] = gateway.master_key
    world.keys.by_name["no key"] = None
    world.keys.by_name["expired"] = expired_key(gateway, role="admin")
    return world


def expired_key(gateway: Gateway, **fields: Any) -> str:
    """A key that expired an hour ago, made in the store directly (the API refuses a past expiry)."""

    async def make() -> str:
        store = await Store.open(gateway.runtime.settings.store)
        try:
            roles = (fields.pop("role", "developer"),)
            expires_at = datetime.now(UTC) - timedelta(hours=1)
            _, key = await store.keys.create("expired", roles=roles, expires_at=expires_at, **fields)
        finally:
            await store.close()
        return key

    return asyncio.run(make())
