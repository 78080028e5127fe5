"""The Anthropic front door: the official ``anthropic`` SDK against any backend."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import pytest

from tests.gateway_harness import MASTER_KEY, Gateway, running_gateway


@pytest.fixture
def client(gateway: Gateway) -> anthropic.Anthropic:
    return gateway.anthropic()


def test_messages_create(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model="chat", max_tokens=50, system="be brief", messages=[{"role": "user", "content": "hello"}]
    )
    assert message.role == "assistant" and message.type == "message"
    assert message.content[0].type == "text" and message.content[0].text
    assert message.stop_reason in {"end_turn", "max_tokens"}
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0


def test_messages_stream(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model="chat", max_tokens=40, messages=[{"role": "user", "content": "go"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and final.content[0].type == "text" and final.content[0].text == text
    assert final.usage.output_tokens > 0


def test_messages_tool_use(client: anthropic.Anthropic) -> None:
    tools = [
        {
            "name": "get_weather",
            "description": "weather for a city",
            "input_schema": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        }
    ]
    first = client.messages.create(
        model="chat",
        max_tokens=100,
        tools=tools,
        messages=[{"role": "user", "content": "weather in Oslo?"}],  # type: ignore[arg-type]
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
        model="chat",
        max_tokens=60,
        tools=tools,
        messages=[{"role": "user", "content": "find"}],  # type: ignore[arg-type]
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert any(b.type == "tool_use" and b.name == "lookup" for b in final.content)


def test_errors_use_the_anthropic_shape(gateway: Gateway) -> None:
    bad_key = gateway.anthropic("nope")
    with pytest.raises(anthropic.AuthenticationError):
        bad_key.messages.create(model="chat", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    client = gateway.anthropic()
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


@pytest.fixture
def via_anthropic(gateway: Gateway, tmp_path: Path) -> Iterator[Gateway]:
    """A second gateway whose only provider speaks the Messages API — to the first gateway's
    ``/v1/messages`` front door. OpenAI requests to it cross both translations for real."""
    config = f"""
master_key: {MASTER_KEY}
store: sqlite:///{tmp_path}/second.db
providers:
  claude: {{kind: anthropic, base_url: {gateway.url}, api_key: {gateway.master_key}}}
models:
  claude-chat:
    deployments:
      - {{provider: claude, model: chat, price: {{input: 3.0, output: 15.0}}}}
"""
    with running_gateway(config) as second:
        yield second


def test_openai_request_answered_by_an_anthropic_deployment(via_anthropic: Gateway) -> None:
    client = via_anthropic.openai()
    reply = client.chat.completions.create(
        model="claude-chat",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}],
        max_tokens=40,
    )
    assert reply.choices[0].message.content
    assert reply.usage is not None and reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    chunks = list(
        client.chat.completions.create(
            model="claude-chat",
            messages=[{"role": "user", "content": "stream"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_openai_tool_call_through_an_anthropic_deployment(via_anthropic: Gateway) -> None:
    client = via_anthropic.openai()
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
    ]
    reply = client.chat.completions.create(
        model="claude-chat",
        messages=[{"role": "user", "content": "weather?"}],
        tools=tools,  # type: ignore[arg-type]
    )
    assert reply.choices[0].finish_reason == "tool_calls"
    call = reply.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert "city" in json.loads(call.function.arguments)  # type: ignore[union-attr]
