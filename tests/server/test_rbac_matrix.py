"""Every admin route × every kind of caller, over real loopback HTTP, against the expected status.

The routes come from the gateway's own route table (``ROUTE_PERMISSIONS``); the expectations are
written here, independently of the role table. A route without an entry in ``EXPECTED`` fails the
test, as does an entry for a route that no longer exists: a new route cannot ship unreviewed.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from interlock.server.admin import create_admin_app
from interlock.server.admin_access import ROUTE_PERMISSIONS, Caller, check_route_table
from interlock.sim import SimServerThread
from tests.conftest import FAST_SIM
from tests.gateway_harness import running_gateway, simple_config
from tests.server.governance_world import MESSAGES, World, build_world

CALLERS = ("admin", "operator", "team_admin", "developer", "viewer", "master", "no key", "revoked", "expired")
UNAUTHENTICATED = frozenset({"no key", "revoked", "expired"})
DEPLOYMENT = "chat/sim-a/sim-small#0"

Request = tuple[str, dict[str, Any] | None]
"""(path below /admin, JSON body or None)."""


@dataclass(frozen=True)
class Case:
    """How to call a route (fresh targets per call where the call changes them), its success
    status, and who succeeds. Every other authenticated caller gets 403."""

    build: Callable[[World], Request]
    status: int
    allowed: frozenset[str]


ADMINS = frozenset({"admin", "master"})
READERS = ADMINS | {"viewer"}
OPS_READERS = READERS | {"operator"}
TENANT_READERS = READERS | {"team_admin"}
KEY_USERS = READERS | {"team_admin", "developer"}
EVERYONE = OPS_READERS | {"team_admin", "developer"}


def _name() -> str:
    return "n-" + secrets.token_hex(4)


def _fresh_org(w: World) -> str:
    return str(w.post("/orgs", {"name": _name()})["id"])


def _fresh_team(w: World) -> str:
    return str(w.post("/teams", {"org_id": w.org, "name": _name()})["id"])


def _fresh_user(w: World) -> str:
    return str(w.post("/users", {"org_id": w.org, "email": _name() + "@x.test", "name": "u"})["id"])


def _fresh_dev_key(w: World) -> str:
    """A developer's personal key in team A: the team admin of A and the developer reach it."""
    return w.new_key(_name(), role="developer", user_id=w.users["dev"], team_id=w.team_a)[0]


def _membership(w: World) -> Request:
    team = _fresh_team(w)
    with w.master() as admin:
        admin.put(f"/admin/teams/{team}/members/{w.users['dev']}", json={"role": "developer"})
    return f"/teams/{team}/members/{w.users['dev']}", None


EXPECTED: dict[tuple[str, str], Case] = {
    ("GET", "/whoami"): Case(lambda w: ("/whoami", None), 200, EVERYONE),
    ("POST", "/keys"): Case(
        lambda w: ("/keys", {"name": _name(), "user_id": w.users["dev"], "team_id": w.team_a}),
        201,
        ADMINS | {"team_admin", "developer"},
    ),
    ("GET", "/keys"): Case(lambda w: ("/keys", None), 200, KEY_USERS),
    ("GET", "/keys/{key_id}"): Case(lambda w: (f"/keys/{w.keys.ids['developer']}", None), 200, KEY_USERS),
    ("PATCH", "/keys/{key_id}"): Case(
        lambda w: (f"/keys/{_fresh_dev_key(w)}", {"name": "renamed"}),
        200,
        ADMINS | {"team_admin", "developer"},
    ),
    ("DELETE", "/keys/{key_id}"): Case(
        lambda w: (f"/keys/{_fresh_dev_key(w)}", None), 200, ADMINS | {"team_admin", "developer"}
    ),
    ("POST", "/orgs"): Case(lambda w: ("/orgs", {"name": _name()}), 201, ADMINS),
    ("GET", "/orgs"): Case(lambda w: ("/orgs", None), 200, TENANT_READERS),
    ("GET", "/orgs/{org_id}"): Case(lambda w: (f"/orgs/{w.org}", None), 200, TENANT_READERS),
    ("PATCH", "/orgs/{org_id}"): Case(lambda w: (f"/orgs/{_fresh_org(w)}", {"name": _name()}), 200, ADMINS),
    ("DELETE", "/orgs/{org_id}"): Case(lambda w: (f"/orgs/{_fresh_org(w)}", None), 200, ADMINS),
    ("POST", "/teams"): Case(lambda w: ("/teams", {"org_id": w.org, "name": _name()}), 201, ADMINS),
    ("GET", "/teams"): Case(lambda w: ("/teams", None), 200, TENANT_READERS),
    ("GET", "/teams/{team_id}"): Case(lambda w: (f"/teams/{w.team_a}", None), 200, TENANT_READERS),
    ("PATCH", "/teams/{team_id}"): Case(
        lambda w: (f"/teams/{_fresh_team(w)}", {"disabled": True}), 200, ADMINS
    ),
    ("DELETE", "/teams/{team_id}"): Case(lambda w: (f"/teams/{_fresh_team(w)}", None), 200, ADMINS),
    ("GET", "/teams/{team_id}/members"): Case(
        lambda w: (f"/teams/{w.team_a}/members", None), 200, TENANT_READERS
    ),
    ("PUT", "/teams/{team_id}/members/{user_id}"): Case(
        lambda w: (f"/teams/{_fresh_team(w)}/members/{w.users['dev']}", {"role": "developer"}), 200, ADMINS
    ),
    ("DELETE", "/teams/{team_id}/members/{user_id}"): Case(_membership, 200, ADMINS),
    ("POST", "/users"): Case(
        lambda w: ("/users", {"org_id": w.org, "email": _name() + "@x.test", "name": "n"}), 201, ADMINS
    ),
    ("GET", "/users"): Case(lambda w: ("/users", None), 200, TENANT_READERS),
    ("GET", "/users/{user_id}"): Case(lambda w: (f"/users/{w.users['dev']}", None), 200, TENANT_READERS),
    ("PATCH", "/users/{user_id}"): Case(lambda w: (f"/users/{_fresh_user(w)}", {"name": "new"}), 200, ADMINS),
    ("DELETE", "/users/{user_id}"): Case(lambda w: (f"/users/{_fresh_user(w)}", None), 200, ADMINS),
    ("GET", "/deployments"): Case(lambda w: ("/deployments", None), 200, OPS_READERS),
    ("POST", "/deployments/{deployment_id:path}/disable"): Case(
        lambda w: (f"/deployments/{quote(DEPLOYMENT, safe='/')}/disable", None), 200, ADMINS | {"operator"}
    ),
    ("POST", "/deployments/{deployment_id:path}/enable"): Case(
        lambda w: (f"/deployments/{quote(DEPLOYMENT, safe='/')}/enable", None), 200, ADMINS | {"operator"}
    ),
    ("POST", "/deployments/{deployment_id:path}/drain"): Case(
        lambda w: (f"/deployments/{quote(DEPLOYMENT, safe='/')}/drain", None), 200, ADMINS | {"operator"}
    ),
    ("GET", "/slo"): Case(lambda w: ("/slo", None), 200, OPS_READERS),
    ("GET", "/requests"): Case(lambda w: ("/requests", None), 200, EVERYONE),
    ("GET", "/requests/{request_id}"): Case(lambda w: (f"/requests/{_dev_request(w)}", None), 200, EVERYONE),
    ("GET", "/spend"): Case(lambda w: ("/spend", None), 200, EVERYONE),
    ("GET", "/reports/summary"): Case(lambda w: ("/reports/summary", None), 200, OPS_READERS),
    ("GET", "/reports/spend"): Case(lambda w: ("/reports/spend?by=team", None), 200, OPS_READERS),
    ("GET", "/budgets"): Case(lambda w: ("/budgets", None), 200, OPS_READERS),
    ("GET", "/audit"): Case(lambda w: ("/audit", None), 200, OPS_READERS),
    ("GET", "/audit/verify"): Case(lambda w: ("/audit/verify", None), 200, OPS_READERS),
}

_DEV_REQUEST: dict[str, str] = {}


def _dev_request(w: World) -> str:
    """The id of a request the developer of team A made (logged in the background)."""
    if "id" not in _DEV_REQUEST:
        with w.as_key("developer") as dev:
            body = {"model": "chat", "messages": MESSAGES, "max_tokens": 2}
            response = dev.post("/v1/chat/completions", json=body)
            assert response.status_code == 200, response.text
            _DEV_REQUEST["id"] = response.headers["x-request-id"]
        with w.master() as admin:
            deadline = time.monotonic() + 10
            while admin.get(f"/admin/requests/{_DEV_REQUEST['id']}").status_code != 200:
                assert time.monotonic() < deadline, "the request was never logged"
                time.sleep(0.05)
    return _DEV_REQUEST["id"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp("rbac")
    with SimServerThread(FAST_SIM) as sim, running_gateway(simple_config({"sim-a": sim.base_url}, tmp)) as gw:
        yield build_world(gw)


def test_every_route_has_an_expectation_and_every_expectation_a_route() -> None:
    missing = sorted(set(ROUTE_PERMISSIONS) - set(EXPECTED))
    stale = sorted(set(EXPECTED) - set(ROUTE_PERMISSIONS))
    assert not missing, f"admin routes without an RBAC expectation here: {missing}"
    assert not stale, f"expectations for routes that do not exist: {stale}"


def test_the_route_table_covers_the_app(world: World) -> None:
    app = create_admin_app(world.gateway.runtime)  # builds only when every route has an entry
    served = {
        (method, route.path)
        for route in app.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    assert served == set(ROUTE_PERMISSIONS)


def test_a_route_missing_from_the_table_stops_the_app_from_being_built() -> None:
    app = FastAPI()

    @app.get("/keys")
    async def listed(_: Caller) -> None: ...

    @app.get("/new-thing")
    async def forgotten(_: Caller) -> None: ...

    with pytest.raises(RuntimeError, match="GET /new-thing has no entry"):
        check_route_table(app)


def test_a_route_without_the_caller_dependency_stops_the_app_from_being_built() -> None:
    app = FastAPI()

    @app.get("/whoami")
    async def unguarded() -> None: ...

    with pytest.raises(RuntimeError, match="does not take the caller dependency"):
        check_route_table(app)


@pytest.mark.parametrize("route", sorted(ROUTE_PERMISSIONS), ids=lambda r: f"{r[0]} {r[1]}")
def test_route_by_caller(world: World, route: tuple[str, str]) -> None:
    case = EXPECTED.get(route)
    assert case is not None, f"{route} needs an entry in EXPECTED"
    method = route[0]
    outcomes: dict[str, int] = {}
    for name in CALLERS:
        path, body = case.build(world)
        with world.as_key(name) as client:
            response = client.request(method, "/admin" + path, json=body)
        outcomes[name] = response.status_code
        if response.status_code >= 400:  # every refusal is in the error shape, never a bare 500
            assert response.json()["error"]["message"], response.text
    expected = {
        name: 401 if name in UNAUTHENTICATED else case.status if name in case.allowed else 403
        for name in CALLERS
    }
    assert outcomes == expected


def test_refusals_say_why(world: World) -> None:
    with world.as_key("expired") as client:
        expired = client.get("/admin/whoami")
    with world.as_key("revoked") as client:
        revoked = client.get("/admin/whoami")
    with world.as_key("viewer") as client:
        viewer = client.post("/admin/orgs", json={"name": "x"})
    assert "expired" in expired.json()["error"]["message"]
    assert "revoked" in revoked.json()["error"]["message"]
    assert viewer.json()["error"]["type"] == "permission_error"
    assert (
        "viewer" in viewer.json()["error"]["message"] and "tenants.write" in viewer.json()["error"]["message"]
    )


def test_whoami_names_the_caller(world: World) -> None:
    with world.as_key("team_admin") as client:
        me = client.get("/admin/whoami").json()
    assert (me["role"], me["team_id"], me["user_id"], me["org_id"]) == (
        "team_admin",
        world.team_a,
        world.users["ta"],
        world.org,
    )
    assert httpx.get(world.gateway.url + "/admin/whoami").status_code == 401
