"""What an upstream said in an error — its hosts, its keys, its words — reaches master and admin
callers only. Every other key sees the generic form: the model, the deployment tried, the error
kind and status, and the request id to quote."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import openai
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from interlock.server.thread import ServerThread
from tests.gateway_harness import MASTER_KEY, Gateway, running_gateway

SECRET = "db-7.internal:5432 rejected sk-upstream-0123456789"


async def chat(request: Request) -> Response:
    """An upstream that fails as the prompt says, quoting its internals each time."""
    body = await request.json()
    mode = body["messages"][0]["content"]
    if mode == "reject":
        error = {"error": {"message": f"bad request: {SECRET}", "code": "invalid_value"}}
        return Response(orjson.dumps(error), status_code=400, media_type="application/json")
    if mode == "stream-fail":
        return StreamingResponse(_broken_stream(), media_type="text/event-stream")
    error = {"error": {"message": f"internal failure at {SECRET}"}}
    return Response(orjson.dumps(error), status_code=500, media_type="application/json")


async def _broken_stream() -> AsyncIterator[bytes]:
    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    chunk["choices"] = [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]
    yield b"data: " + orjson.dumps(chunk) + b"\n\n"
    yield b"data: " + orjson.dumps({"error": {"message": f"engine crashed on {SECRET}"}}) + b"\n\n"


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    upstream = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
    with ServerThread(upstream) as up:
        config = f"""
master_key: {MASTER_KEY}
store: sqlite:///{tmp_path}/interlock.db
providers:
  leaky: {{kind: openai, base_url: {up.url}/v1}}
models:
  chat:
    retry: {{max_attempts: 1}}
    deployments:
      - {{provider: leaky, model: m}}
"""
        with running_gateway(config) as gw:
            yield gw


def failure(client: openai.OpenAI, mode: str) -> openai.APIError:
    messages = [{"role": "user", "content": mode}]
    with pytest.raises(openai.APIError) as caught:
        if mode.startswith("stream"):
            for _ in client.chat.completions.create(model="chat", messages=messages, stream=True):  # type: ignore[arg-type]
                pass
        else:
            client.chat.completions.create(model="chat", messages=messages)  # type: ignore[arg-type]
    return caught.value


def admin_key(gateway: Gateway) -> str:
    with gateway.admin() as admin:
        response = admin.post("/admin/keys", json={"name": "ops", "role": "admin"})
    return str(response.json()["key"])


@pytest.mark.parametrize("mode", ["fail", "reject", "stream-fail"])
def test_master_and_admin_keys_see_the_upstreams_words(gateway: Gateway, mode: str) -> None:
    for key in (gateway.master_key, admin_key(gateway)):
        assert SECRET in failure(gateway.openai(key), mode).message


@pytest.mark.parametrize("mode", ["fail", "reject", "stream-fail"])
def test_other_keys_see_only_the_generic_form(gateway: Gateway, mode: str) -> None:
    _, key = gateway.create_key("tenant")
    err = failure(gateway.openai(key), mode)
    assert "db-7" not in err.message and "sk-upstream" not in err.message
    assert "model 'chat'" in err.message and "chat/leaky/m#0" in err.message
    assert "Quote request id req_" in err.message
    if isinstance(err, openai.APIStatusError):
        assert f"status {err.status_code}" in err.message
        assert err.response.headers["x-request-id"] in err.message


def test_the_generic_form_keeps_status_and_code(gateway: Gateway) -> None:
    _, key = gateway.create_key("tenant")
    err = failure(gateway.openai(key), "reject")
    assert isinstance(err, openai.BadRequestError)
    assert err.code == "invalid_value"
