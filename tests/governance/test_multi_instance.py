"""Two gateway instances sharing one PostgreSQL: what one changes, the other applies within its key
refresh interval (the ``keys_revision`` poll), over real loopback HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from interlock.sim import SimServerThread
from tests.gateway_harness import Gateway, running_gateway, simple_config
from tests.postgres import PostgresServer, run_private

BODY = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> Iterator[str]:
    """A database of this test's own (two gateways migrate and share it)."""
    base = pg_server.url()
    name = run_private(pg_server.create_database())
    try:
        yield base.rsplit("/", 1)[0] + "/" + name
    finally:
        run_private(pg_server.drop_database(name))


@pytest.fixture
def pair(sim: SimServerThread, tmp_path: Path, pg_url: str) -> Iterator[tuple[Gateway, Gateway]]:
    config = simple_config({"sim-a": sim.base_url}, tmp_path).replace(
        f"store: sqlite:///{tmp_path}/interlock.db", f"store: {pg_url}"
    )
    assert pg_url in config
    with running_gateway(config) as first, running_gateway(config) as second:
        yield first, second


def chat(gateway: Gateway, key: str) -> int:
    response = httpx.post(
        gateway.base_url + "/chat/completions", json=BODY, headers={"Authorization": f"Bearer {key}"}
    )
    return response.status_code


def admin(gateway: Gateway, method: str, path: str, body: Any = None) -> dict[str, Any]:
    with gateway.admin() as client:
        response = client.request(method, "/admin" + path, json=body)
    assert response.status_code < 300, response.text
    return dict(response.json())


def eventually_refused(gateway: Gateway, key: str, bound_s: float = 10.0) -> None:
    """Wait (up to a generous bound, far above the 1 s refresh interval) for a 401."""
    deadline = time.monotonic() + bound_s
    while chat(gateway, key) != 401:
        assert time.monotonic() < deadline, "the other instance never applied the change"
        time.sleep(0.05)


def test_a_key_revoked_on_one_instance_fails_on_the_other(pair: tuple[Gateway, Gateway]) -> None:
    first, second = pair
    created = admin(first, "POST", "/keys", {"name": "shared"})
    assert chat(second, created["key"]) == 200  # made on the first, known to the second at once
    admin(first, "DELETE", f"/keys/{created['id']}")
    assert chat(first, created["key"]) == 401  # at once where it was revoked
    eventually_refused(second, created["key"])


def test_disabling_a_team_or_ending_a_membership_stops_keys_everywhere(pair: tuple[Gateway, Gateway]) -> None:
    first, second = pair
    org = admin(first, "POST", "/orgs", {"name": "acme"})["id"]
    team = admin(first, "POST", "/teams", {"org_id": org, "name": "search"})["id"]
    other = admin(first, "POST", "/teams", {"org_id": org, "name": "ads"})["id"]
    user = admin(first, "POST", "/users", {"org_id": org, "email": "ann@acme.test", "name": "Ann"})["id"]
    admin(first, "PUT", f"/teams/{other}/members/{user}", {"role": "developer"})
    service = admin(first, "POST", "/keys", {"name": "svc", "team_id": team})["key"]
    personal = admin(first, "POST", "/keys", {"name": "ann", "user_id": user, "team_id": other})["key"]
    assert chat(second, service) == 200 and chat(second, personal) == 200

    admin(first, "PATCH", f"/teams/{team}", {"disabled": True})
    assert chat(first, service) == 401
    eventually_refused(second, service)
    assert chat(second, personal) == 200  # another team's key is untouched

    admin(first, "DELETE", f"/teams/{other}/members/{user}")
    eventually_refused(second, personal)

    admin(first, "PATCH", f"/teams/{team}", {"disabled": False})
    deadline = time.monotonic() + 10
    while chat(second, service) != 200:  # and re-enabling brings it back
        assert time.monotonic() < deadline, "re-enabling never took effect"
        time.sleep(0.05)


def test_audit_entries_from_both_instances_form_one_chain(pair: tuple[Gateway, Gateway]) -> None:
    first, second = pair
    for index in range(6):
        gateway = first if index % 2 else second
        admin(gateway, "POST", "/orgs", {"name": f"org-{index}"})
    report = admin(second, "GET", "/audit/verify")
    assert report["ok"] and report["entries"] == 6, report
