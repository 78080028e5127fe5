"""Tenant isolation over real loopback HTTP: team A's admins and developers never see team B's keys,
request log or spend; and no key can make a key with more power than its own."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from interlock.sim import SimServerThread
from tests.conftest import FAST_SIM
from tests.gateway_harness import running_gateway, simple_config
from tests.server.governance_world import MESSAGES, World, build_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp("tenants")
    with SimServerThread(FAST_SIM) as sim, running_gateway(simple_config({"sim-a": sim.base_url}, tmp)) as gw:
        world = build_world(gw)
        ids = [_chat(world, name) for name in ("developer", "developer_b", "team_admin", "service_a")]
        _wait_logged(world, ids)
        yield world


def _chat(world: World, caller: str) -> str:
    with world.as_key(caller) as client:
        body = {"model": "chat", "messages": MESSAGES, "max_tokens": 3}
        response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    return response.headers["x-request-id"]


def _wait_logged(world: World, ids: list[str]) -> None:
    with world.master() as admin:
        deadline = time.monotonic() + 10
        for request_id in ids:
            while admin.get(f"/admin/requests/{request_id}").status_code != 200:
                assert time.monotonic() < deadline, "requests were never logged"
                time.sleep(0.05)


def _get(world: World, caller: str, path: str, **params: Any) -> httpx.Response:
    with world.as_key(caller) as client:
        return client.get("/admin" + path, params=params)


def _data(world: World, caller: str, path: str, **params: Any) -> list[dict[str, Any]]:
    response = _get(world, caller, path, **params)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def test_team_admin_sees_its_teams_keys_only(world: World) -> None:
    seen = {k["id"] for k in _data(world, "team_admin", "/keys")}
    ids = world.keys.ids
    assert {ids["team_admin"], ids["developer"], ids["service_a"]} <= seen
    assert not seen & {ids["team_admin_b"], ids["developer_b"], ids["admin"], ids["viewer"]}
    assert all(k["team_id"] == world.team_a for k in _data(world, "team_admin", "/keys"))
    assert _get(world, "team_admin", f"/keys/{ids['developer_b']}").status_code == 404
    assert _get(world, "team_admin_b", f"/keys/{ids['developer']}").status_code == 404


def test_developer_sees_its_own_keys_only(world: World) -> None:
    seen = {k["id"] for k in _data(world, "developer", "/keys")}
    assert world.keys.ids["developer"] in seen
    assert all(k["user_id"] == world.users["dev"] for k in _data(world, "developer", "/keys"))
    assert _get(world, "developer", f"/keys/{world.keys.ids['service_a']}").status_code == 404


def test_request_log_is_cut_to_the_team(world: World) -> None:
    everything = _data(world, "admin", "/requests")
    teams = {r["team_id"] for r in everything}
    assert {world.team_a, world.team_b} <= teams
    team_a = _data(world, "team_admin", "/requests")
    assert team_a and all(r["team_id"] == world.team_a for r in team_a)
    team_b = _data(world, "team_admin_b", "/requests")
    assert team_b and all(r["team_id"] == world.team_b for r in team_b)
    # a filter for another team's key finds nothing rather than leaking
    assert _data(world, "team_admin", "/requests", key_id=world.keys.ids["developer_b"]) == []
    b_request = team_b[0]["request_id"]
    assert _get(world, "team_admin", f"/requests/{b_request}").status_code == 404
    assert _get(world, "developer", f"/requests/{b_request}").status_code == 404


def test_developer_sees_its_own_requests_only(world: World) -> None:
    mine = _data(world, "developer", "/requests")
    assert mine and all(r["user_id"] == world.users["dev"] for r in mine)


def test_spend_is_cut_to_the_team(world: World) -> None:
    with world.as_key("admin") as client:
        total = client.get("/admin/spend").json()
    with world.as_key("team_admin") as client:
        team_a = client.get("/admin/spend").json()
    with world.as_key("developer") as client:
        dev = client.get("/admin/spend").json()
    assert {line["name"] for line in team_a["by_team"]} == {world.team_a}
    assert {line["name"] for line in total["by_team"]} >= {world.team_a, world.team_b}
    assert 0 < dev["total"]["requests"] < team_a["total"]["requests"] < total["total"]["requests"]
    assert {line["name"] for line in dev["by_key"]} == {world.keys.ids["developer"]}


def test_team_admin_reads_its_own_team_members_and_org_only(world: World) -> None:
    assert [t["id"] for t in _data(world, "team_admin", "/teams")] == [world.team_a]
    assert _get(world, "team_admin", f"/teams/{world.team_b}").status_code == 404
    assert _get(world, "team_admin", f"/teams/{world.team_b}/members").status_code == 404
    members = {u["id"] for u in _data(world, "team_admin", "/users")}
    assert members == {world.users["ta"], world.users["dev"], world.users["dev2"]}
    assert _get(world, "team_admin", f"/users/{world.users['devb']}").status_code == 404
    assert [o["id"] for o in _data(world, "team_admin", "/orgs")] == [world.org]


def _create(world: World, caller: str, **body: Any) -> httpx.Response:
    with world.as_key(caller) as client:
        return client.post("/admin/keys", json={"name": "made", **body})


@pytest.mark.parametrize(
    ("caller", "body", "field"),
    [
        ("team_admin", {"role": "admin", "team_id": "A"}, "role"),
        ("team_admin", {"role": "operator", "team_id": "A"}, "role"),
        ("team_admin", {"role": "viewer", "team_id": "A"}, "role"),
        ("team_admin", {"role": "developer", "team_id": "B"}, "team_id"),
        ("team_admin", {"role": "developer", "user_id": "devb", "team_id": "B"}, "team_id"),
        ("team_admin", {"role": "developer"}, "team_id"),
        ("developer", {"role": "team_admin", "user_id": "dev", "team_id": "A"}, "role"),
        ("developer", {"role": "admin", "user_id": "dev"}, "role"),
        ("developer", {"role": "developer", "user_id": "dev2", "team_id": "A"}, "user_id"),
        ("developer", {"role": "developer", "team_id": "A"}, "user_id"),
        ("developer", {"role": "developer", "user_id": "dev", "team_id": "B"}, "team_id"),
        ("service_a", {"role": "developer", "team_id": "A"}, "user_id"),
    ],
)
def test_no_escalation_through_key_creation(
    world: World, caller: str, body: dict[str, str], field: str
) -> None:
    ids = {"A": world.team_a, "B": world.team_b, **world.users}
    resolved = {k: ids.get(v, v) if k in ("team_id", "user_id") else v for k, v in body.items()}
    response = _create(world, caller, **resolved)
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["type"] == "permission_error" and error["param"] == field, error


def test_team_admin_makes_keys_for_its_team_and_members(world: World) -> None:
    service = _create(world, "team_admin", role="developer", team_id=world.team_a)
    personal = _create(
        world, "team_admin", role="developer", user_id=world.users["dev2"], team_id=world.team_a
    )
    deputy = _create(world, "team_admin", role="team_admin", team_id=world.team_a)
    assert [r.status_code for r in (service, personal, deputy)] == [201, 201, 201]
    assert personal.json()["org_id"] == world.org


def test_owner_must_hang_together(world: World) -> None:
    outsider = _create(world, "admin", user_id=world.users["devb"], team_id=world.team_a)
    not_team_admin = _create(
        world, "admin", role="team_admin", user_id=world.users["dev"], team_id=world.team_a
    )
    assert outsider.status_code == 400 and outsider.json()["error"]["param"] == "team_id"
    assert "not a member" in outsider.json()["error"]["message"]
    assert not_team_admin.status_code == 400 and not_team_admin.json()["error"]["param"] == "role"


def test_keys_cannot_be_changed_or_revoked_across_teams(world: World) -> None:
    victim, _ = world.new_key("victim", role="developer", user_id=world.users["devb"], team_id=world.team_b)
    teammate, _ = world.new_key(
        "teammate", role="developer", user_id=world.users["dev2"], team_id=world.team_a
    )
    with world.as_key("team_admin") as client:
        assert client.delete(f"/admin/keys/{victim}").status_code == 404
        assert client.patch(f"/admin/keys/{victim}", json={"name": "x"}).status_code == 404
        assert client.patch(f"/admin/keys/{world.keys.ids['admin']}", json={"name": "x"}).status_code == 404
        escalate = client.patch(f"/admin/keys/{teammate}", json={"role": "admin"})
    with world.as_key("developer") as client:
        assert client.delete(f"/admin/keys/{teammate}").status_code == 404
    assert escalate.status_code == 403 and escalate.json()["error"]["param"] == "role"
    with world.master() as admin:
        assert admin.get(f"/admin/keys/{victim}").json()["revoked_at"] is None


def test_allow_lists_and_expiry_cannot_be_widened(world: World) -> None:
    limited_id, limited = world.new_key(
        "limited",
        role="team_admin",
        user_id=world.users["ta"],
        team_id=world.team_a,
        models=["chat", "gpt-4*"],
        expires_at="2099-01-01T00:00:00Z",
    )
    with httpx.Client(base_url=world.gateway.url, headers={"Authorization": f"Bearer {limited}"}) as client:
        inherited = client.post("/admin/keys", json={"name": "child", "team_id": world.team_a})
        narrower = client.post(
            "/admin/keys", json={"name": "narrow", "team_id": world.team_a, "models": ["gpt-4o"]}
        )
        wider = client.post("/admin/keys", json={"name": "wide", "team_id": world.team_a, "models": ["*"]})
        later = client.post(
            "/admin/keys",
            json={"name": "late", "team_id": world.team_a, "expires_at": "2100-01-01T00:00:00Z"},
        )
        lifted = client.patch(f"/admin/keys/{inherited.json()['id']}", json={"models": []})
    assert inherited.status_code == 201
    assert inherited.json()["models"] == ["chat", "gpt-4*"]
    assert inherited.json()["expires_at"].startswith("2099-01-01")
    assert narrower.status_code == 201 and narrower.json()["models"] == ["gpt-4o"]
    assert wider.status_code == 403 and wider.json()["error"]["param"] == "models"
    assert later.status_code == 403 and later.json()["error"]["param"] == "expires_at"
    # an empty list means "no limit": it falls back to the caller's own, never to "anything"
    assert lifted.status_code == 200 and lifted.json()["models"] == ["chat", "gpt-4*"]
    assert limited_id
