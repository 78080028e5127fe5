"""Strings from callers are bounded before they reach logs, metrics, error messages or the store:
an over-long value is a clear 400 naming the limit, and no error echoes an unbounded string."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from interlock.server.caller_input import MAX_LABELS, MAX_MODEL_NAME
from tests.gateway_harness import Gateway

HUGE = "m" * 10_000
MESSAGES = [{"role": "user", "content": "hi"}]


def master(gateway: Gateway) -> dict[str, str]:
    return {"Authorization": f"Bearer {gateway.master_key}"}


def test_a_10_kb_model_name_is_a_short_400(gateway: Gateway) -> None:
    for path, body in (
        ("/v1/chat/completions", {"model": HUGE, "messages": MESSAGES}),
        ("/v1/embeddings", {"model": HUGE, "input": "x"}),
        ("/v1/messages", {"model": HUGE, "max_tokens": 5, "messages": MESSAGES}),
    ):
        response = httpx.post(gateway.url + path, json=body, headers=master(gateway))
        assert response.status_code == 400, response.text
        assert f"the limit is {MAX_MODEL_NAME}" in response.text
        assert len(response.content) < 1000


def test_an_unknown_model_error_stays_short(gateway: Gateway) -> None:
    name = "x" * MAX_MODEL_NAME  # as long as allowed, and unknown
    body = {"model": name, "messages": MESSAGES}
    response = httpx.post(gateway.base_url + "/chat/completions", json=body, headers=master(gateway))
    assert response.status_code == 404 and len(response.content) < 1000
    described = httpx.get(gateway.base_url + "/models/" + HUGE, headers=master(gateway))
    assert described.status_code == 404 and len(described.content) < 1000


@pytest.mark.parametrize(
    ("headers", "text"),
    [
        ({"x-interlock-pool": "p" * 200}, "limit is 128"),
        ({"x-interlock-labels": "k=" + "v" * 200}, "limit is 128"),
        ({"x-interlock-labels": ",".join(f"k{i}=v" for i in range(MAX_LABELS + 1))}, "limit is 16"),
        ({"x-interlock-labels": "broken" + "b" * 5000}, "key=value"),
    ],
)
def test_routing_headers_are_bounded(gateway: Gateway, headers: dict[str, str], text: str) -> None:
    body = {"model": "chat", "messages": MESSAGES}
    response = httpx.post(
        gateway.base_url + "/chat/completions", json=body, headers={**master(gateway), **headers}
    )
    assert response.status_code == 400, response.text
    assert text in response.json()["error"]["message"]
    assert len(response.content) < 1000


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "models": [f"m{i}" for i in range(65)]}, "models"),
        ({"name": "x", "models": ["m" * 257]}, "models"),
        ({"name": "x", "pools": [f"p{i}" for i in range(65)]}, "pools"),
        ({"name": "x", "role": "r" * 65}, "role"),
        ({"name": "x", "metadata": {"blob": "b" * 20_000}}, "metadata"),
        ({"name": "x", "metadata": {f"k{i}": 1 for i in range(65)}}, "metadata"),
        ({"name": "x", "user_id": "u" * 65}, "user_id"),
        ({"name": "x", "team_id": "t" * 65}, "team_id"),
    ],
)
def test_key_fields_are_bounded(gateway: Gateway, body: dict[str, Any], field: str) -> None:
    with gateway.admin() as admin:
        response = admin.post("/admin/keys", json=body)
    assert response.status_code == 400, response.text
    assert field in response.json()["error"]["message"]
