"""Callers are identified from their headers, before the gateway reads a byte of the body.

Every request here sends only its headers (announcing a body that never comes): the gateway must
answer from them alone. A gateway that read the body first would wait for it forever.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from interlock.sim import SimServerThread
from tests.gateway_harness import Gateway, running_gateway, simple_config
from tests.server.edge_helpers import connect, read_response, request_head

MODEL_ROUTES = ["/v1/chat/completions", "/v1/embeddings", "/v1/messages"]


def headers_only(gateway: Gateway, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    port = int(gateway.url.rsplit(":", 1)[1])
    with connect(port) as sock:
        sock.sendall(request_head("POST", path, {"Content-Type": "application/json", **headers}))
        return read_response(sock)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Length": "1000"}


@pytest.mark.parametrize("path", MODEL_ROUTES)
def test_missing_unknown_and_revoked_keys_are_401_unread(gateway: Gateway, path: str) -> None:
    key_id, revoked = gateway.create_key("soon-revoked")
    with gateway.admin() as admin:
        assert admin.delete(f"/admin/keys/{key_id}").status_code == 200
    for headers in ({"Content-Length": "1000"}, bearer("sk-il-nobody-has-this-key"), bearer(revoked)):
        status, raw = headers_only(gateway, path, headers)
        assert status == 401, (headers, raw)
        assert b"authentication_error" in raw


def test_admin_api_refuses_from_the_headers(gateway: Gateway) -> None:
    with gateway.admin() as admin:
        created = admin.post("/admin/keys", json={"name": "read-only", "role": "viewer"})
    virtual = created.json()["key"]  # a viewer may not create keys: refused before the body
    status, raw = headers_only(gateway, "/admin/keys", {"Content-Length": "1000"})
    assert status == 401 and b"authentication_error" in raw
    status, raw = headers_only(gateway, "/admin/keys", bearer("sk-il-nobody-has-this-key"))
    assert status == 401 and b"authentication_error" in raw
    status, raw = headers_only(gateway, "/admin/keys", bearer(virtual))
    assert status == 403 and b"permission_error" in raw


def test_a_refused_caller_is_never_asked_for_its_body(gateway: Gateway) -> None:
    # With "Expect: 100-continue" a client waits for the go-ahead before sending its body; a caller
    # without a valid key never gets it, only the refusal.
    headers = {"Content-Length": "1000", "Expect": "100-continue"}
    for path in ("/v1/chat/completions", "/admin/keys"):
        status, raw = headers_only(gateway, path, headers)
        assert status == 401, raw
        assert b"100 Continue" not in raw


def test_the_refusal_is_recorded_without_a_model(gateway: Gateway) -> None:
    status, _ = headers_only(gateway, "/v1/chat/completions", {**bearer("sk-il-x"), "x-request-id": "mine-1"})
    assert status == 401
    with gateway.admin() as admin:
        deadline = time.monotonic() + 10  # the log is written in the background
        while not (
            found := admin.get("/admin/requests", params={"client_request_id": "mine-1"}).json()["data"]
        ):
            assert time.monotonic() < deadline, "the refused request was never recorded"
            time.sleep(0.05)
    (record,) = found
    assert record["status"] == 401 and record["error_kind"] == "invalid_api_key"
    assert record["model"] == "" and record["key_id"] is None


def test_a_valid_key_still_gets_its_answer(gateway: Gateway) -> None:
    _, key = gateway.create_key("works")
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
    response = httpx.post(
        gateway.base_url + "/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200, response.text


def test_other_routes_have_a_small_body_limit(sim: SimServerThread, tmp_path: Path) -> None:
    # 4 KiB is under the dashboard's own form limit (16 KiB): the edge's limit is what refuses it
    config = simple_config({"sim-a": sim.base_url}, tmp_path, "server: {body_limits: {other: 1024}}")
    form = b"api_key=" + b"k" * 4096
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    with running_gateway(config) as gw:
        declared = httpx.post(gw.url + "/ui/login", content=form, headers=headers)
        streamed = httpx.post(gw.url + "/ui/login", content=iter([form]), headers=headers)
        small = httpx.post(gw.url + "/ui/login", content=b"api_key=wrong", headers=headers)
    for response in (declared, streamed):
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "request_too_large"
    assert small.status_code == 401  # under the limit, the dashboard answers as before


def test_admin_bodies_over_the_admin_limit_are_413(gateway: Gateway) -> None:
    limit = gateway.runtime.settings.server.body_limits.admin
    big = {"name": "x", "metadata": {"blob": "b" * limit}}
    with gateway.admin() as admin:
        declared = admin.post("/admin/keys", json=big)
        streamed = admin.post(
            "/admin/keys",
            content=iter([b'{"name": "x", "metadata": {"blob": "', b"b" * limit, b'"}}']),
            headers={"Content-Type": "application/json"},
        )
    for response in (declared, streamed):
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "request_too_large"
