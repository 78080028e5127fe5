"""The dashboard over plain HTTP (no browser): sign-in rules, cookies, CSRF and origin checks,
security headers, the JSON data layer, fragments, and a clear answer for every bad input."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from tests.gateway_harness import Gateway

DEPLOYMENT = "chat/sim-a/sim-small#0"


@pytest.fixture
def anonymous(gateway: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, follow_redirects=False) as client:
        yield client


@contextlib.contextmanager
def _signed_in(gateway: Gateway, key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, follow_redirects=False) as client:
        response = client.post("/ui/login", data={"key": key, "next": "/ui/requests"})
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/ui/requests"
        yield client


@pytest.fixture
def master(gateway: Gateway) -> Iterator[httpx.Client]:
    with _signed_in(gateway, gateway.master_key) as client:
        yield client


def _csrf(client: httpx.Client) -> str:
    html = client.get("/ui/overview").text
    marker = 'name="csrf" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def test_pages_need_a_session(anonymous: httpx.Client) -> None:
    response = anonymous.get("/ui/requests?model=chat")
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/login?next=%2Fui%2Frequests%3Fmodel%3Dchat"
    assert anonymous.get("/ui/").headers["location"].startswith("/ui/login")
    api = anonymous.get("/ui/api/overview")
    assert api.status_code == 401 and api.json()["error"]["type"] == "authentication_error"
    assert anonymous.get("/ui/overview", headers={"x-interlock-fragment": "1"}).status_code == 401
    action = anonymous.post("/ui/deployments/actions/drain", data={"target": DEPLOYMENT})
    assert action.status_code == 401


def test_the_session_cookie_is_safe(gateway: Gateway, anonymous: httpx.Client) -> None:
    response = anonymous.post("/ui/login", data={"key": gateway.master_key})
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
    assert gateway.master_key not in cookie
    assert response.headers["location"] == "/ui/"


@pytest.mark.parametrize(
    ("next_url", "expected"),
    [
        ("https://evil.example/ui/x", "/ui/"),
        ("//evil.example/ui/", "/ui/"),
        ("/ui\\..\\evil", "/ui/"),
        ("/admin/keys", "/ui/"),
        ("/ui/spend?range=7d", "/ui/spend?range=7d"),
    ],
)
def test_sign_in_never_redirects_off_the_dashboard(gateway: Gateway, next_url: str, expected: str) -> None:
    with httpx.Client(base_url=gateway.url, follow_redirects=False) as client:
        response = client.post("/ui/login", data={"key": gateway.master_key, "next": next_url})
        assert response.headers["location"] == expected


def test_bad_sign_ins_get_clear_answers(gateway: Gateway, anonymous: httpx.Client) -> None:
    wrong = anonymous.post("/ui/login", data={"key": "sk-il-wrong"})
    assert wrong.status_code == 401 and "unknown, revoked or expired" in wrong.text
    assert "set-cookie" not in wrong.headers
    empty = anonymous.post("/ui/login", data={"key": ""})
    assert empty.status_code == 401
    as_json = anonymous.post("/ui/login", json={"key": gateway.master_key})
    assert as_json.status_code == 415 and "x-www-form-urlencoded" in as_json.text
    huge = anonymous.post("/ui/login", data={"key": "x" * 20_000})
    assert huge.status_code == 413
    other_site = anonymous.post(
        "/ui/login", data={"key": gateway.master_key}, headers={"origin": "https://evil.example"}
    )
    assert other_site.status_code == 403 and "set-cookie" not in other_site.headers
    anonymous.cookies.set("interlock_ui", "e30.bm90LWEtc2lnbmF0dXJl", path="/ui")
    assert anonymous.get("/ui/overview").status_code == 303


def test_every_response_carries_the_security_headers(master: httpx.Client) -> None:
    for path in ("/ui/overview", "/ui/login", "/ui/api/overview", "/ui/static/app.css"):
        headers = master.get(path).headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "script-src 'self'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
    page = master.get("/ui/overview")
    assert page.headers["cache-control"] == "no-store"
    assert "<script>" not in page.text  # no inline script: the CSP forbids it


def test_json_data_layer_and_fragments(gateway: Gateway, master: httpx.Client) -> None:
    gateway.openai().chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])
    data = master.get("/ui/api/deployments").json()
    assert [d["id"] for m in data["models"] for d in m["deployments"]] == [
        DEPLOYMENT,
        "embed/sim-a/sim-embed#0",
    ]
    assert data["charts"]["by_deployment"]["kind"] == "line"
    fragment = master.get("/ui/deployments", headers={"x-interlock-fragment": "1"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and 'data-deployment="chat/sim-a/sim-small#0"' in fragment.text
    assert master.get("/ui/api/nope").status_code == 404
    assert master.get("/ui/api/requests/not-a-request").status_code == 404
    uplot = master.get("/ui/static/uPlot.iife.min.js")
    assert uplot.status_code == 200 and "MIT License" in uplot.text[:300]


def test_operator_actions_need_csrf_and_a_known_target(gateway: Gateway, master: httpx.Client) -> None:
    token = _csrf(master)
    url = "/ui/deployments/actions/drain"
    assert master.post(url, data={"target": DEPLOYMENT}).status_code == 403
    assert master.post(url, data={"target": DEPLOYMENT, "csrf": "forged"}).status_code == 403
    assert master.post(url, data={"target": "", "csrf": token}).status_code == 400
    assert master.post(url, data={"target": "nope", "csrf": token}).status_code == 404
    assert (
        master.post("/ui/deployments/actions/explode", data={"target": DEPLOYMENT, "csrf": token}).status_code
        == 404
    )
    assert master.post(url, json={"target": DEPLOYMENT, "csrf": token}).status_code == 415
    assert not gateway.runtime.routing.disabled

    done = master.post(url, data={"target": DEPLOYMENT, "csrf": token})
    assert done.status_code == 303 and done.headers["location"] == "/ui/deployments"
    assert gateway.runtime.routing.disabled == {DEPLOYMENT}
    page = master.get("/ui/deployments")
    assert f"Draining {DEPLOYMENT}." in page.text
    enable = master.post("/ui/deployments/actions/enable", data={"target": DEPLOYMENT, "csrf": token})
    assert enable.status_code == 303 and not gateway.runtime.routing.disabled
    audit = master.get("/ui/api/audit").json()["entries"]
    assert [(e["action"], e["target"], e["actor"]) for e in audit[:2]] == [
        ("enable", DEPLOYMENT, "master"),
        ("drain", DEPLOYMENT, "master"),
    ]


def test_a_virtual_key_is_refused_operator_actions_and_operator_pages(gateway: Gateway) -> None:
    key_id, key = gateway.create_key("tenant")
    with _signed_in(gateway, key) as tenant:
        token = _csrf(tenant)
        refused = tenant.post("/ui/deployments/actions/disable", data={"target": DEPLOYMENT, "csrf": token})
        assert refused.status_code == 403 and "master key" in refused.text
        assert not gateway.runtime.routing.disabled
        assert tenant.get("/ui/audit").status_code == 403
        assert "data-action=" not in tenant.get("/ui/deployments").text
        assert tenant.get("/ui/api/overview").json()["slo"] is None
        with gateway.admin() as admin:
            assert admin.delete(f"/admin/keys/{key_id}").status_code == 200
        assert tenant.get("/ui/overview").status_code == 303  # revoked: the session is over


def test_sign_out_needs_the_csrf_token_and_clears_the_cookie(master: httpx.Client) -> None:
    assert master.post("/ui/logout", data={"csrf": ""}).status_code == 403
    token = _csrf(master)
    response = master.post("/ui/logout", data={"csrf": token})
    assert response.status_code == 303 and response.headers["location"] == "/ui/login"
    assert (
        'interlock_ui=""' in response.headers["set-cookie"] or "Max-Age=0" in response.headers["set-cookie"]
    )


def test_admin_api_disable_and_enable_are_audited(gateway: Gateway, master: httpx.Client) -> None:
    path = f"/admin/deployments/{quote(DEPLOYMENT, safe='/')}"
    with gateway.admin() as admin:
        disabled = {"id": DEPLOYMENT, "mode": "disabled", "disabled": True, "audited": True}
        assert admin.post(path + "/disable").json() == disabled
        enabled = {"id": DEPLOYMENT, "mode": "enabled", "disabled": False, "audited": True}
        assert admin.post(path + "/enable").json() == enabled
    entries = master.get("/ui/api/audit?target=" + quote(DEPLOYMENT)).json()["entries"]
    assert [(e["action"], e["detail"]["via"]) for e in entries] == [("enable", "api"), ("disable", "api")]
