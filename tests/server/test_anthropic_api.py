"""The Anthropic front door: the official ``anthropic`` SDK against any backend."""

from __future__ import annotations

import anthropic
import httpx
import pytest

from tests.gateway_harness import Gateway


@pytest.fixture
def client(gateway: Gateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=gateway.master_key, max_retries=0)


def test_messages_create(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model="chat", max_tokens=50, system="be brief", messages=[{"role": "user", "content": "hello"}]
    )
    assert message.role == "assistant" and message.type == "message"
    assert message.content[0].type == "text" and message.content[0].text
    assert message.stop_reason in {"end_turn", "max_tokens"}
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0


def test_messages_stream(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model="chat", max_tokens=40, messages=[{"role": "user", "content": "go"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and final.content[0].type == "text" and final.content[0].text == text
    assert final.usage.output_tokens > 0


def test_messages_tool_use(client: anthropic.Anthropic) -> None:
    tools = [
        {
            "name": "get_weather",
            "description": "weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        }
    ]
    first = client.messages.create(
        model="chat", max_tokens=100, tools=tools, messages=[{"role": "user", "content": "weather in Oslo?"}]  # type: ignore[arg-type]
    )
    assert first.stop_reason == "tool_use"
    use = next(b for b in first.content if b.type == "tool_use")
    assert use.name == "get_weather" and "city" in use.input  # type: ignore[operator]
    second = client.messages.create(
        model="chat",
        max_tokens=100,
        tools=tools,  # type: ignore[arg-type]
        messages=[
            {"role": "user", "content": "weather in Oslo?"},
            {"role": "assistant", "content": first.content},  # type: ignore[typeddict-item]
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "cold"}]},
        ],
    )
    assert second.content[0].type == "text"


def test_streamed_tool_use(client: anthropic.Anthropic) -> None:
    tools = [{"name": "lookup", "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}]
    with client.messages.stream(
        model="chat", max_tokens=60, tools=tools, messages=[{"role": "user", "content": "find"}]  # type: ignore[arg-type]
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert any(b.type == "tool_use" and b.name == "lookup" for b in final.content)


def test_errors_use_the_anthropic_shape(gateway: Gateway) -> None:
    bad_key = anthropic.Anthropic(base_url=gateway.url, api_key="nope", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        bad_key.messages.create(model="chat", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    client = anthropic.Anthropic(base_url=gateway.url, api_key=gateway.master_key, max_retries=0)
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(model="missing", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    raw = httpx.post(
        gateway.url + "/v1/messages", content=b"{broken", headers={"x-api-key": gateway.master_key}
    )
    assert raw.status_code == 400
    assert raw.json()["type"] == "error" and raw.json()["error"]["type"] == "invalid_request_error"


def test_missing_max_tokens_is_400(gateway: Gateway) -> None:
    raw = httpx.post(
        gateway.url + "/v1/messages",
        json={"model": "chat", "messages": [{"role": "user", "content": "x"}]},
        headers={"x-api-key": gateway.master_key},
    )
    assert raw.status_code == 400 and "max_tokens" in raw.json()["error"]["message"]
