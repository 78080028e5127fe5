"""Keys: created through the admin API (shown once), listed without secrets, revoked at once."""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest

from interlock.store import Store
from tests.gateway_harness import Gateway

MESSAGES = [{"role": "user", "content": "hi"}]


def test_virtual_key_works_and_revocation_is_immediate(gateway: Gateway) -> None:
    key_id, key = gateway.create_key("svc-a")
    assert key.startswith("sk-il-")
    client = gateway.openai(key)
    assert client.chat.completions.create(model="chat", messages=MESSAGES).choices  # type: ignore[arg-type]
    with gateway.admin() as admin:
        assert admin.delete(f"/admin/keys/{key_id}").json() == {"id": key_id, "revoked": True}
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="chat", messages=MESSAGES)  # type: ignore[arg-type]


def test_listing_never_shows_the_secret(gateway: Gateway) -> None:
    key_id, key = gateway.create_key("listed")
    with gateway.admin() as admin:
        listing = admin.get("/admin/keys")
    assert listing.status_code == 200
    assert key not in listing.text
    entry = next(k for k in listing.json()["data"] if k["id"] == key_id)
    assert entry["name"] == "listed" and key.startswith(entry["key_prefix"])


def test_revoked_keys_are_listed_only_on_request(gateway: Gateway) -> None:
    key_id, _ = gateway.create_key("gone")
    with gateway.admin() as admin:
        admin.delete(f"/admin/keys/{key_id}")
        active = {k["id"] for k in admin.get("/admin/keys").json()["data"]}
        everything = {
            k["id"] for k in admin.get("/admin/keys", params={"include_revoked": "true"}).json()["data"]
        }
        again = admin.delete(f"/admin/keys/{key_id}")
    assert key_id not in active and key_id in everything
    assert again.status_code == 404 and again.json()["error"]["code"] == "not_found"


def test_key_created_by_another_process_is_accepted_on_first_use(gateway: Gateway) -> None:
    async def create_elsewhere() -> str:
        store = await Store.open(gateway.runtime.settings.store)
        try:
            _, key = await store.keys.create("elsewhere")
        finally:
            await store.close()
        return key

    key = asyncio.run(create_elsewhere())
    client = gateway.openai(key)
    assert client.models.list().data


def test_admin_needs_a_key_whose_role_allows_the_route(gateway: Gateway) -> None:
    _, key = gateway.create_key("not-admin")  # a developer key with no user: it cannot make keys
    no_key = httpx.post(gateway.url + "/admin/keys", json={"name": "x"})
    virtual = httpx.post(
        gateway.url + "/admin/keys", json={"name": "x"}, headers={"Authorization": f"Bearer {key}"}
    )
    assert no_key.status_code == 401 and no_key.json()["error"]["type"] == "authentication_error"
    assert virtual.status_code == 403 and virtual.json()["error"]["type"] == "permission_error"


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x", "role": "superuser"}, "role"),
        ({"name": "x", "role": ["admin"]}, "role"),
        ({"name": "x", "models": "gpt-4"}, "models"),
        ({"name": "x", "models": ["two words"]}, "models"),
        ({"name": "x", "team_id": "team_nope"}, "team_id"),
        ({"name": "x", "user_id": "user_nope"}, "user_id"),
        ({"name": "x", "expires_at": "yesterday"}, "expires_at"),
        ({"name": "x", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "x", "role": "team_admin"}, "role"),
        ({"name": "x", "bogus": 1}, "bogus"),
    ],
)
def test_bad_admin_bodies_are_400(gateway: Gateway, body: dict[str, object], text: str) -> None:
    with gateway.admin() as admin:
        response = admin.post("/admin/keys", json=body)
    assert response.status_code == 400
    assert text in response.json()["error"]["message"]
