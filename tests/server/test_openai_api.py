"""The OpenAI front door, driven by the official ``openai`` SDK over loopback HTTP."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.gateway_harness import Gateway


@pytest.fixture
def client(gateway: Gateway) -> openai.OpenAI:
    return gateway.openai()


def test_chat_completion(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hello"}])
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content
    assert reply.usage is not None and reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0


def test_headers_carry_request_id_and_overhead(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": "hi"}], extra_headers={"x-request-id": "abc-123"}
    )
    assert raw.headers["x-request-id"].startswith("req_")  # the gateway's own, whatever was sent
    assert raw.headers["x-client-request-id"] == "abc-123"
    assert float(raw.headers["x-interlock-overhead-ms"]) >= 0.0
    assert raw.headers["x-interlock-deployment"].startswith("chat/sim-a/")


def test_streaming_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="chat",
        messages=[{"role": "user", "content": "stream please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert not chunks[-1].choices


def test_streaming_without_usage_hides_the_usage_the_gateway_asked_for(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}], stream=True)
    )
    assert chunks and all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)


def test_tools_round_trip(client: openai.OpenAI) -> None:
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
    messages: list[dict[str, object]] = [{"role": "user", "content": "weather in Paris?"}]
    first = client.chat.completions.create(model="chat", messages=messages, tools=tools)  # type: ignore[arg-type]
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert "city" in json.loads(call.function.arguments)  # type: ignore[union-attr]
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"},
    ]
    second = client.chat.completions.create(model="chat", messages=messages, tools=tools)  # type: ignore[arg-type]
    assert second.choices[0].message.content


def test_streaming_tool_calls(client: openai.OpenAI) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    chunks = list(
        client.chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": "look it up"}],
            tools=tools,
            stream=True,  # type: ignore[arg-type]
        )
    )
    names = [
        tc.function.name
        for c in chunks
        if c.choices and c.choices[0].delta.tool_calls
        for tc in c.choices[0].delta.tool_calls
        if tc.function and tc.function.name
    ]
    assert names == ["lookup"]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_json_response_format_n_stop_seed_are_forwarded(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="chat",
        messages=[{"role": "user", "content": "json please"}],
        response_format={"type": "json_object"},
        n=2,
        seed=3,
        max_completion_tokens=400,
        user="u-1",
    )
    assert len(reply.choices) == 2
    assert isinstance(json.loads(reply.choices[0].message.content or ""), dict)
    again = client.chat.completions.create(
        model="chat",
        messages=[{"role": "user", "content": "json please"}],
        response_format={"type": "json_object"},
        n=2,
        seed=3,
        max_completion_tokens=400,
    )
    assert again.choices[0].message.content == reply.choices[0].message.content


def test_max_tokens_caps_output(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "a long answer"}], max_tokens=3
    )
    assert reply.usage is not None and reply.usage.completion_tokens <= 3
    assert reply.choices[0].finish_reason == "length"


def test_embeddings_float_and_base64(client: openai.OpenAI) -> None:
    floats = client.embeddings.create(model="embed", input=["one", "two"], encoding_format="float")
    assert len(floats.data) == 2 and len(floats.data[0].embedding) > 0
    decoded = client.embeddings.create(model="embed", input="one")  # the SDK asks for base64
    assert decoded.data[0].embedding == pytest.approx(floats.data[0].embedding, rel=1e-6)
    assert floats.usage.prompt_tokens > 0


def test_models_list_and_get(client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert ids == {"chat", "embed"}
    assert client.models.retrieve("chat").id == "chat"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")


def test_embeddings_model_used_for_chat_is_a_clear_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="serves embeddings"):
        client.chat.completions.create(model="embed", messages=[{"role": "user", "content": "x"}])


def test_health_and_readiness(gateway: Gateway) -> None:
    assert httpx.get(gateway.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(gateway.url + "/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"config": "ok", "store": "ok"}
