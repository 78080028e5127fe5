"""Bad input to the governance routes: each a clear 4xx naming the field, nothing half-made, no 500."""

from __future__ import annotations

from typing import Any

import pytest

from tests.gateway_harness import Gateway


def _org(gateway: Gateway) -> str:
    with gateway.admin() as admin:
        return str(admin.post("/admin/orgs", json={"name": "acme"}).json()["id"])


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("POST", "/orgs", {}, 400, "name"),
        ("POST", "/orgs", {"name": ""}, 400, "name"),
        ("POST", "/orgs", {"name": "x", "id": "org_mine"}, 400, "id"),
        ("POST", "/orgs", {"name": "x" * 201}, 400, "name"),
        ("POST", "/orgs", ["name"], 400, None),
        ("POST", "/teams", {"org_id": "org_nope", "name": "t"}, 400, "org_id"),
        ("POST", "/teams", {"name": "t"}, 400, "org_id"),
        ("POST", "/users", {"org_id": "{org}", "email": "not-an-email", "name": "n"}, 400, "email"),
        ("POST", "/users", {"org_id": "org_nope", "email": "a@b.c", "name": "n"}, 400, "org_id"),
        ("PATCH", "/orgs/{org}", {}, 400, None),
        ("PATCH", "/orgs/{org}", {"name": None}, 400, "name"),
        ("PATCH", "/orgs/{org}", {"disabled": "perhaps"}, 400, "disabled"),
        ("PATCH", "/orgs/org_nope", {"name": "x"}, 404, None),
        ("DELETE", "/teams/team_nope", None, 404, None),
        ("PUT", "/teams/team_nope/members/user_nope", {"role": "developer"}, 404, None),
        ("PUT", "/teams/team_nope/members/user_nope", {"role": "owner"}, 400, "role"),
        ("DELETE", "/teams/team_nope/members/user_nope", None, 404, None),
        ("GET", "/audit?limit=-1", None, 400, "limit"),
        ("GET", "/audit?limit=100000", None, 400, "limit"),
        ("GET", "/requests?limit=0", None, 400, "limit"),
        ("GET", "/spend?since=yesterday", None, 400, "since"),
        ("GET", "/spend?limit=-5", None, 400, "limit"),
        ("PATCH", "/keys/key_nope", {"name": "x"}, 404, None),
        ("DELETE", "/keys/key_nope", None, 404, None),
    ],
)
def test_bad_input_is_a_clear_4xx(
    gateway: Gateway, method: str, path: str, body: Any, status: int, field: str | None
) -> None:
    org = _org(gateway)
    if isinstance(body, dict):
        body = {k: org if v == "{org}" else v for k, v in body.items()}
    with gateway.admin() as admin:
        response = admin.request(method, "/admin" + path.replace("{org}", org), json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"]
    if field is not None:
        assert field in error["message"] and error["param"] == field, error


def test_names_in_use_are_409_and_nothing_is_half_made(gateway: Gateway) -> None:
    org = _org(gateway)
    with gateway.admin() as admin:
        again = admin.post("/admin/orgs", json={"name": "acme"})
        team = admin.post("/admin/teams", json={"org_id": org, "name": "t"}).json()["id"]
        twin = admin.post("/admin/teams", json={"org_id": org, "name": "t"})
        user = admin.post("/admin/users", json={"org_id": org, "email": "a@acme.test", "name": "a"}).json()
        same_email = admin.post("/admin/users", json={"org_id": org, "email": "A@ACME.test", "name": "b"})
        teams = admin.get("/admin/teams").json()["data"]
        audit = admin.get("/admin/audit").json()["data"]
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    assert again.json()["error"]["param"] == "name"
    assert twin.status_code == 409 and same_email.status_code == 409
    assert [t["id"] for t in teams] == [team] and user["email"] == "a@acme.test"
    assert [e["action"] for e in audit] == ["user.create", "team.create", "org.create"]


def test_a_membership_across_orgs_is_refused(gateway: Gateway) -> None:
    org = _org(gateway)
    with gateway.admin() as admin:
        other = admin.post("/admin/orgs", json={"name": "other"}).json()["id"]
        team = admin.post("/admin/teams", json={"org_id": org, "name": "t"}).json()["id"]
        stranger = admin.post(
            "/admin/users", json={"org_id": other, "email": "s@o.test", "name": "s"}
        ).json()["id"]
        refused = admin.put(f"/admin/teams/{team}/members/{stranger}", json={"role": "developer"})
    assert refused.status_code == 409 and refused.json()["error"]["param"] == "user_id"
