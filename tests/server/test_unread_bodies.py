"""A 300 MiB body from a caller without a valid key is refused from the headers, and the gateway —
run as users run it, ``interlock up`` in its own process — does not buffer it: its resident memory
stays put. (An unauthenticated 300 MiB POST to /admin/keys once grew it by 600 MiB.)"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from interlock.server.thread import free_port
from tests.gateway_harness import MASTER_KEY as MASTER
from tests.server.edge_helpers import GatewayProcess, gateway_process

MiB = 1024 * 1024
BIG = 300 * MiB
ROUTES = ("/admin/keys", "/v1/chat/completions", "/v1/messages")
GROWTH_ALLOWED = 8 * MiB
"""Far below one copy of the body; allocator noise and the first requests' buffers fit in it."""


def body(total: int) -> Iterator[bytes]:
    chunk = b"x" * MiB
    for _ in range(total // MiB):
        yield chunk


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    tmp = tmp_path_factory.mktemp("unread")
    dead = f"http://127.0.0.1:{free_port()}/v1"  # never reached: every request here is refused
    config = f"""
master_key: {MASTER}
store: sqlite:///{tmp}/interlock.db
providers:
  up: {{kind: openai, base_url: {dead}}}
models:
  chat:
    deployments:
      - {{provider: up, model: m}}
"""
    with gateway_process(tmp, config) as gw:
        yield gw


def post(gw: GatewayProcess, path: str, total: int, *, declared: bool, key: str | None) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if declared:
        headers["content-length"] = str(total)
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    return httpx.post(gw.url + path, content=body(total), headers=headers, timeout=120)


def test_300_mib_unauthenticated_bodies_are_refused_unread(gateway: GatewayProcess) -> None:
    for path in ROUTES:  # warm up: first requests import and allocate what every later one reuses
        for declared in (False, True):
            post(gateway, path, 4 * MiB, declared=declared, key=None)
    before = gateway.rss_bytes()
    for path in ROUTES:
        for declared in (False, True):
            for key in (None, "sk-il-not-a-key-anyone-has"):
                response = post(gateway, path, BIG, declared=declared, key=key)
                assert response.status_code == 401, (path, declared, key, response.text)
                assert response.json()["error"]["type"] == "authentication_error"
    growth = gateway.rss_bytes() - before
    assert growth < GROWTH_ALLOWED, f"the gateway grew by {growth / MiB:.1f} MiB"


def test_a_virtual_key_is_refused_at_the_admin_api_unread(gateway: GatewayProcess) -> None:
    auth = {"authorization": f"Bearer {MASTER}"}
    body = {"name": "not-admin", "role": "viewer"}  # a viewer may not create keys
    key = httpx.post(gateway.url + "/admin/keys", json=body, headers=auth).json()["key"]
    before = gateway.rss_bytes()
    response = post(gateway, "/admin/keys", BIG, declared=False, key=key)
    assert response.status_code == 403 and response.json()["error"]["type"] == "permission_error"
    assert gateway.rss_bytes() - before < GROWTH_ALLOWED


def test_an_authenticated_body_over_the_limit_is_cut_off(gateway: GatewayProcess) -> None:
    before = gateway.rss_bytes()
    for path in ROUTES:
        response = post(gateway, path, BIG, declared=False, key=MASTER)
        assert response.status_code == 413, (path, response.text)
        assert "limit" in response.json()["error"]["message"]
    # the model routes' limit (32 MiB) may be buffered once, then freed; never the whole body
    assert gateway.rss_bytes() - before < 2 * 32 * MiB + GROWTH_ALLOWED
