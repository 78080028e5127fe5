"""Keys held to their model and pool allow-lists, and to their expiry, through the real gateway with
the official SDKs against the simulator: refusals come in the caller's own dialect."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from interlock.server.thread import free_port
from interlock.sim import SimServerThread
from tests.gateway_harness import Gateway, running_gateway, simple_config
from tests.server.governance_world import expired_key

MESSAGES: Any = [{"role": "user", "content": "hi"}]

EXTRA = """  pooled:
    deployments:
      - {provider: sim-a, model: sim-small, pool: gpu}
      - {provider: sim-a, model: sim-small, pool: cpu}
  gpt-4o:
    deployments:
      - {provider: sim-a, model: sim-small}
  gpt-4o-mini:
    deployments:
      - {provider: sim-a, model: sim-small}
  guarded:
    fallbacks: [gpt-4o]
    deployments:
      - {provider: dead, model: m}
pools:
  gpu: {}
  cpu: {}
"""


@pytest.fixture
def gw(sim: SimServerThread, tmp_path: Path) -> Iterator[Gateway]:
    upstreams = {"sim-a": sim.base_url, "dead": f"http://127.0.0.1:{free_port()}/v1"}
    with running_gateway(simple_config(upstreams, tmp_path, EXTRA)) as gateway:
        yield gateway


def make_key(gateway: Gateway, **fields: Any) -> str:
    with gateway.admin() as admin:
        response = admin.post("/admin/keys", json={"name": "scoped", **fields})
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


def test_a_model_outside_the_list_is_403_naming_it(gw: Gateway) -> None:
    client = gw.openai(make_key(gw, models=["chat", "gpt-4o-*"]))
    assert client.chat.completions.create(model="chat", messages=MESSAGES).choices
    assert client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).choices  # glob
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    error = refused.value.body
    assert isinstance(error, dict)
    assert error["code"] == "model_not_allowed" and error["type"] == "permission_error"
    assert "'gpt-4o'" in error["message"] and error["param"] == "model"
    with pytest.raises(openai.PermissionDeniedError):
        client.embeddings.create(model="embed", input="x")


def test_anthropic_callers_get_the_refusal_in_their_shape(gw: Gateway) -> None:
    client = gw.anthropic(make_key(gw, models=["chat"]))
    assert client.messages.create(model="chat", max_tokens=5, messages=MESSAGES).content
    with pytest.raises(anthropic.PermissionDeniedError) as refused:
        client.messages.create(model="gpt-4o", max_tokens=5, messages=MESSAGES)
    body = refused.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert body["error"]["type"] == "permission_error" and "'gpt-4o'" in body["error"]["message"]


def test_streams_are_refused_before_they_start(gw: Gateway) -> None:
    key = make_key(gw, models=["chat"])
    body = {"model": "gpt-4o", "messages": MESSAGES, "stream": True}
    response = httpx.post(
        gw.base_url + "/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 403 and response.json()["error"]["code"] == "model_not_allowed"


def test_the_model_list_shows_only_allowed_models(gw: Gateway) -> None:
    client = gw.openai(make_key(gw, models=["gpt-4o*"]))
    assert sorted(m.id for m in client.models.list().data) == ["gpt-4o", "gpt-4o-mini"]
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("chat")
    assert len(gw.openai().models.list().data) > 2  # the master key sees them all


def test_a_fallback_the_key_may_not_use_is_skipped(gw: Gateway) -> None:
    allowed = gw.openai(make_key(gw, models=["guarded", "gpt-4o"]))
    assert allowed.chat.completions.create(model="guarded", messages=MESSAGES).choices  # fell back
    limited = gw.openai(make_key(gw, models=["guarded"]))
    with pytest.raises(openai.APIStatusError) as failed:
        limited.chat.completions.create(model="guarded", messages=MESSAGES)
    assert failed.value.status_code == 503  # its own deployment is down; gpt-4o is not its to use


def test_a_pinned_pool_outside_the_list_is_403(gw: Gateway) -> None:
    client = gw.openai(make_key(gw, pools=["gpu"]))
    ok = client.chat.completions.with_raw_response.create(
        model="pooled", messages=MESSAGES, extra_headers={"x-interlock-pool": "gpu"}
    )
    assert ok.status_code == 200
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.chat.completions.create(
            model="pooled", messages=MESSAGES, extra_headers={"x-interlock-pool": "cpu"}
        )
    error = refused.value.body
    assert isinstance(error, dict) and error["code"] == "pool_not_allowed" and "'cpu'" in error["message"]


def test_a_pool_limited_key_is_routed_inside_its_pools(gw: Gateway) -> None:
    with gw.admin() as admin:
        pools = {d["id"]: d["pool"] for d in admin.get("/admin/deployments").json()["data"]}
    client = gw.openai(make_key(gw, pools=["gpu"]))
    answered = {
        client.chat.completions.with_raw_response.create(model="pooled", messages=MESSAGES).headers[
            "x-interlock-deployment"
        ]
        for _ in range(12)
    }
    assert {pools[d] for d in answered} == {"gpu"}
    # a model with no deployment in the key's pools is refused, not served from elsewhere
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.chat.completions.create(model="chat", messages=MESSAGES)
    assert isinstance(refused.value.body, dict) and refused.value.body["code"] == "pool_not_allowed"


def test_an_expired_key_is_401_saying_so(gw: Gateway) -> None:
    client = gw.openai(expired_key(gw))
    with pytest.raises(openai.AuthenticationError) as refused:
        client.chat.completions.create(model="chat", messages=MESSAGES)
    assert "expired" in refused.value.message


def test_a_key_expired_through_the_api_fails_at_once(gw: Gateway) -> None:
    key = make_key(gw, expires_at="2099-01-01T00:00:00Z")
    client = gw.openai(key)
    assert client.chat.completions.create(model="chat", messages=MESSAGES).choices
    with gw.admin() as admin:
        key_id = next(
            k["id"] for k in admin.get("/admin/keys").json()["data"] if key.startswith(k["key_prefix"])
        )
        changed = admin.patch(f"/admin/keys/{key_id}", json={"expires_at": "2001-01-01T00:00:00Z"})
    assert changed.status_code == 200
    with pytest.raises(openai.AuthenticationError) as refused:
        client.chat.completions.create(model="chat", messages=MESSAGES)
    assert "expired at 2001-01-01" in refused.value.message


def test_changing_the_allow_list_applies_at_once(gw: Gateway) -> None:
    key = make_key(gw)
    client = gw.openai(key)
    assert client.chat.completions.create(model="gpt-4o", messages=MESSAGES).choices
    with gw.admin() as admin:
        key_id = next(
            k["id"] for k in admin.get("/admin/keys").json()["data"] if key.startswith(k["key_prefix"])
        )
        assert admin.patch(f"/admin/keys/{key_id}", json={"models": ["chat"]}).status_code == 200
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
