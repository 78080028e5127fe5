"""Every bad input gets a clear error in the caller's dialect — never a 500, never a traceback."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.gateway_harness import Gateway


def post(
    gateway: Gateway, body: bytes | str, key: str | None = None, path: str = "/v1/chat/completions"
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    content = body.encode() if isinstance(body, str) else body
    return httpx.post(gateway.url + path, content=content, headers=headers, timeout=10)


def assert_openai_error(response: httpx.Response, status: int, text: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert text in error["message"]
    assert "Traceback" not in response.text
    assert response.headers["x-request-id"]
    return error  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ("{not json", "not valid JSON"),
        ("", "empty"),
        ("[1, 2]", "JSON object"),
        ('{"messages": [{"role": "user", "content": "x"}]}', "'model' is required"),
        ('{"model": 5, "messages": [{"role": "user", "content": "x"}]}', "'model' is required"),
        ('{"model": "chat"}', "'messages' is required"),
        ('{"model": "chat", "messages": []}', "'messages' is required"),
        ('{"model": "chat", "messages": ["hi"]}', "messages[0]"),
        ('{"model": "chat", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}', "'stream'"),
        (
            '{"model": "chat", "messages": [{"role": "user", "content": "x"}], "max_tokens": -1}',
            "'max_tokens'",
        ),
        ('{"model": "chat", "messages": [{"role": "user", "content": "x"}], "n": 1.5}', "'n'"),
        (
            '{"model": "chat", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}',
            "'temperature'",
        ),
    ],
)
def test_malformed_chat_bodies_are_400(gateway: Gateway, body: str, text: str) -> None:
    error = assert_openai_error(post(gateway, body, gateway.master_key), 400, text)
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ('{"model": "embed"}', "'input' is required"),
        ('{"model": "embed", "input": []}', "'input' is required"),
        ('{"model": "embed", "input": [1, "a"]}', "'input' is required"),
        ('{"model": "embed", "input": "x", "dimensions": 0}', "'dimensions'"),
    ],
)
def test_malformed_embedding_bodies_are_400(gateway: Gateway, body: str, text: str) -> None:
    assert_openai_error(post(gateway, body, gateway.master_key, "/v1/embeddings"), 400, text)


def test_unknown_model_is_404_through_the_sdk(gateway: Gateway) -> None:
    client = gateway.openai()
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-17", messages=[{"role": "user", "content": "x"}])
    assert caught.value.code == "model_not_found"


def test_missing_and_invalid_keys_are_401(gateway: Gateway) -> None:
    body = '{"model": "chat", "messages": [{"role": "user", "content": "x"}]}'
    assert_openai_error(post(gateway, body), 401, "Missing API key")
    assert_openai_error(post(gateway, body, "sk-il-not-a-real-key"), 401, "Invalid API key")
    client = gateway.openai("wrong-key")
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_auth_is_checked_before_the_model(gateway: Gateway) -> None:
    body = '{"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]}'
    assert_openai_error(post(gateway, body, "bad-key"), 401, "Invalid API key")


def test_oversized_body_is_413(gateway: Gateway) -> None:
    limit = gateway.runtime.settings.server.body_limits.model
    big = '{"model": "chat", "messages": [{"role": "user", "content": "' + "x" * (limit + 10) + '"}]}'
    error = assert_openai_error(post(gateway, big, gateway.master_key), 413, "limit")
    assert error["code"] == "request_too_large"


def test_oversized_chunked_body_is_413(gateway: Gateway) -> None:
    limit = gateway.runtime.settings.server.body_limits.model

    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"model": "chat", "messages": [{"role": "user", "content": "'
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536
        yield b'"}]}'

    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        content=chunks(),
        headers={"Authorization": f"Bearer {gateway.master_key}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert_openai_error(response, 413, "limit")


def test_unknown_route_and_wrong_method_are_json(gateway: Gateway) -> None:
    missing = httpx.get(gateway.url + "/v1/nothing-here")
    assert_openai_error(missing, 404, "No route")
    wrong = httpx.get(gateway.url + "/v1/chat/completions")
    assert_openai_error(wrong, 405, "not allowed")
