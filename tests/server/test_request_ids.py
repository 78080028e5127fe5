"""The gateway assigns every request its own id; the caller's ``x-request-id`` is only a correlation
field. A caller reusing an id can neither keep its requests and spend out of the log nor pre-empt
another tenant's record."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from interlock.store import SpendLine, Store
from tests.gateway_harness import Gateway
from tests.server.edge_helpers import connect, read_response, request_head

CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}


def chat(gateway: Gateway, key: str, request_id: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}", "x-request-id": request_id}
    response = httpx.post(gateway.base_url + "/chat/completions", json=CHAT, headers=headers)
    assert response.status_code == 200, response.text
    return response


def logged(gateway: Gateway, client_request_id: str, count: int) -> list[dict[str, Any]]:
    """The request-log records carrying ``client_request_id``, once there are ``count`` of them."""
    with gateway.admin() as admin:
        deadline = time.monotonic() + 10  # the log is written in the background
        while True:
            query = {"client_request_id": client_request_id}
            data: list[dict[str, Any]] = admin.get("/admin/requests", params=query).json()["data"]
            if len(data) >= count:
                return data
            assert time.monotonic() < deadline, f"only {len(data)} of {count} records were written"
            time.sleep(0.05)


def spend_of(gateway: Gateway, key_id: str) -> SpendLine:
    async def total() -> SpendLine:
        store = await Store.open(gateway.runtime.settings.store)
        try:
            return await store.spend.total(datetime.now(UTC) - timedelta(hours=1), key_id=key_id)
        finally:
            await store.close()

    return asyncio.run(total())


def test_the_same_request_id_from_two_keys_makes_two_records(gateway: Gateway) -> None:
    (id_a, key_a), (id_b, key_b) = gateway.create_key("tenant-a"), gateway.create_key("tenant-b")
    first, second = chat(gateway, key_a, "shared-id"), chat(gateway, key_b, "shared-id")
    ours = {first.headers["x-request-id"], second.headers["x-request-id"]}
    assert len(ours) == 2 and "shared-id" not in ours
    assert first.headers["x-client-request-id"] == second.headers["x-client-request-id"] == "shared-id"

    records = logged(gateway, "shared-id", 2)
    assert {r["request_id"] for r in records} == ours
    assert {r["key_id"] for r in records} == {id_a, id_b}
    assert all(r["client_request_id"] == "shared-id" and r["cost"] > 0 for r in records)
    for key_id in (id_a, id_b):
        spent = spend_of(gateway, key_id)
        assert spent.requests == 1 and spent.cost > 0


def test_a_key_reusing_its_own_id_keeps_every_request(gateway: Gateway) -> None:
    key_id, key = gateway.create_key("repeater")
    for _ in range(3):
        chat(gateway, key, "again")
    records = logged(gateway, "again", 3)
    assert len({r["request_id"] for r in records}) == 3
    assert spend_of(gateway, key_id).requests == 3


def test_the_callers_id_is_cut_to_printable_ascii(gateway: Gateway) -> None:
    port = int(gateway.url.rsplit(":", 1)[1])
    sent = "caller-\xe9\xe8-" + "z" * 300
    with connect(port) as sock:
        head = request_head("GET", "/v1/models", {"x-request-id": sent}).decode("latin-1")
        sock.sendall(head.encode("latin-1"))
        status, raw = read_response(sock)
    assert status == 401  # no key: what matters here is what was echoed
    headers = dict(
        line.split(": ", 1) for line in raw.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")[1:]
    )
    assert headers["x-request-id"].startswith("req_")

    key_id, key = gateway.create_key("long-id")
    response = chat(gateway, key, "caller-" + "z" * 300)
    kept = response.headers["x-client-request-id"]
    assert len(kept) == 128 and kept.startswith("caller-zzz")
    (record,) = logged(gateway, kept, 1)
    assert record["key_id"] == key_id


def test_a_non_ascii_id_loses_its_unprintable_characters(gateway: Gateway) -> None:
    _, key = gateway.create_key("accents")
    headers = {"Authorization": f"Bearer {key}", "x-request-id": "caller-\xe9-id".encode("latin-1")}
    response = httpx.post(gateway.base_url + "/chat/completions", json=CHAT, headers=headers)  # type: ignore[arg-type]
    assert response.status_code == 200
    assert response.headers["x-client-request-id"] == "caller--id"
