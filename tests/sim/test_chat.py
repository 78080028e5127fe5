"""Chat completions over real loopback HTTP, through the official SDK and raw HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import orjson
import pytest

from interlock.sim import SimServerThread
from interlock.sim.tokens import count_tokens

from .conftest import StartSim
from .helpers import chat_body, get, sdk, stats

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
                "unit": {"type": "string", "enum": ["c", "f"]},
            },
            "required": ["city", "days"],
        },
    },
}
CLOCK_TOOL = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}


def sse_events(response: httpx.Response) -> list[Any]:
    """The ``data:`` payloads of a streamed response, JSON-decoded except ``[DONE]``."""
    events: list[Any] = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            payload = line.removeprefix("data: ")
            events.append(payload if payload == "[DONE]" else orjson.loads(payload))
    return events


def ask(client: openai.OpenAI, content: str = "Hello there", **extra: Any) -> Any:
    return client.chat.completions.create(
        model="sim-small", messages=[{"role": "user", "content": content}], **extra
    )


def test_non_streaming_answer_has_openai_shape(client: openai.OpenAI, http: httpx.Client) -> None:
    question = "What is an interlock?"
    reply = ask(client, question)
    assert reply.object == "chat.completion"
    assert reply.id.startswith("chatcmpl-")
    assert reply.model == "sim-small"
    assert reply.system_fingerprint
    choice = reply.choices[0]
    assert choice.message.role == "assistant"
    assert choice.finish_reason == "stop"
    assert choice.message.content
    assert reply.usage is not None
    assert reply.usage.completion_tokens == count_tokens(choice.message.content)
    assert reply.usage.prompt_tokens >= count_tokens(question)
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    raw = http.post("/v1/chat/completions", json=chat_body()).json()
    assert raw["choices"][0]["logprobs"] is None
    assert raw["usage"]["prompt_tokens_details"]["cached_tokens"] == 0


def test_any_model_name_is_echoed(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="meta-llama/Llama-3.1-8B-Instruct", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.model == "meta-llama/Llama-3.1-8B-Instruct"


def test_stream_matches_non_streaming_and_reports_usage(client: openai.OpenAI) -> None:
    whole = ask(client, seed=3)
    stream = ask(client, seed=3, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]


def test_stream_wire_format(http: httpx.Client) -> None:
    body = chat_body(stream=True, stream_options={"include_usage": True})
    with http.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0
    # Without include_usage there is no usage field at all, as with OpenAI.
    with http.stream("POST", "/v1/chat/completions", json=chat_body(stream=True)) as response:
        plain = sse_events(response)
    assert all("usage" not in c for c in plain[:-1])


def test_n_choices_streamed_and_whole(client: openai.OpenAI) -> None:
    whole = ask(client, n=3)
    assert [c.index for c in whole.choices] == [0, 1, 2]
    assert len({c.message.content for c in whole.choices}) == 3
    chunks = list(ask(client, n=3, stream=True))
    texts = {0: "", 1: "", 2: ""}
    finished = set()
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            if choice.finish_reason:
                finished.add(choice.index)
    assert finished == {0, 1, 2}
    assert [texts[i] for i in range(3)] == [c.message.content for c in whole.choices]


def test_same_seed_same_text_and_other_seed_other_text(client: openai.OpenAI, start_sim: StartSim) -> None:
    first = ask(client, seed=42).choices[0].message.content
    assert ask(client, seed=42).choices[0].message.content == first
    assert ask(client, seed=43).choices[0].message.content != first
    with sdk(start_sim().base_url, api_key="x") as other:
        assert ask(other, seed=42).choices[0].message.content == first


def test_max_tokens_cuts_with_length(client: openai.OpenAI) -> None:
    reply = ask(client, max_tokens=3)
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens == 3
    newer = ask(client, max_completion_tokens=2)
    assert newer.usage.completion_tokens == 2


def test_stop_sequence_cuts_text(client: openai.OpenAI) -> None:
    full = ask(client, seed=7).choices[0].message.content
    stop_word = full.split()[4]
    reply = ask(client, seed=7, stop=[stop_word, "never-appears"])
    assert reply.choices[0].finish_reason == "stop"
    assert reply.choices[0].message.content == full[: full.index(stop_word)]
    streamed = "".join(
        c.choices[0].delta.content or "" for c in ask(client, seed=7, stop=stop_word, stream=True)
    )
    assert streamed == reply.choices[0].message.content


def test_json_object_response_format(client: openai.OpenAI) -> None:
    reply = ask(client, response_format={"type": "json_object"})
    assert isinstance(orjson.loads(reply.choices[0].message.content), dict)


def test_json_schema_response_format(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer", "minimum": 0, "maximum": 120},
            "tags": {"type": "array", "items": {"type": "string"}},
            "address": {"$ref": "#/$defs/address"},
            "kind": {"enum": ["a", "b"]},
            "score": {"type": ["number", "null"]},
        },
        "required": ["name", "age", "tags", "address", "kind"],
        "$defs": {
            "address": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        },
    }
    reply = ask(
        client,
        max_tokens=500,
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema}},
    )
    data = orjson.loads(reply.choices[0].message.content)
    assert set(schema["required"]) <= set(data)
    assert isinstance(data["name"], str)
    assert isinstance(data["age"], int) and 0 <= data["age"] <= 120
    assert all(isinstance(tag, str) for tag in data["tags"])
    assert isinstance(data["address"]["city"], str)
    assert data["kind"] in ("a", "b")
    assert isinstance(data["score"], float)


def test_tool_call_non_streaming(client: openai.OpenAI) -> None:
    reply = ask(client, "Weather in Oslo?", tools=[WEATHER_TOOL, CLOCK_TOOL])
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.id.startswith("call_") and call.type == "function"
    assert call.function.name == "get_weather"
    arguments = orjson.loads(call.function.arguments)
    assert isinstance(arguments["city"], str) and 1 <= arguments["days"] <= 7
    named = ask(
        client,
        tools=[WEATHER_TOOL, CLOCK_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    assert named.choices[0].message.tool_calls[0].function.name == "get_time"
    assert ask(client, tools=[WEATHER_TOOL], tool_choice="none").choices[0].message.tool_calls is None


def test_tool_call_streaming_deltas(http: httpx.Client, client: openai.OpenAI) -> None:
    body = chat_body("Weather in Oslo?", tools=[WEATHER_TOOL], stream=True)
    with http.stream("POST", "/v1/chat/completions", json=body) as response:
        chunks = sse_events(response)[:-1]
    first = chunks[0]["choices"][0]["delta"]["tool_calls"][0]
    assert first["index"] == 0 and first["id"].startswith("call_") and first["type"] == "function"
    assert first["function"] == {"name": "get_weather", "arguments": ""}
    fragments = [c["choices"][0]["delta"] for c in chunks[1:-1]]
    assert len(fragments) > 1
    assert all(
        set(d) == {"tool_calls"} and set(d["tool_calls"][0]) == {"index", "function"} for d in fragments
    )
    arguments = "".join(d["tool_calls"][0]["function"]["arguments"] for d in fragments)
    whole = ask(client, "Weather in Oslo?", tools=[WEATHER_TOOL])
    assert arguments == whole.choices[0].message.tool_calls[0].function.arguments
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_tool_result_is_talked_about(client: openai.OpenAI) -> None:
    call = ask(client, "Weather in Oslo?", tools=[WEATHER_TOOL]).choices[0].message.tool_calls[0]
    messages: list[Any] = [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21 degrees"},
    ]
    reply = client.chat.completions.create(model="sim-small", messages=messages, tools=[WEATHER_TOOL])
    assert reply.choices[0].finish_reason == "stop"
    assert "Sunny, 21 degrees" in reply.choices[0].message.content


def test_content_parts_are_part_of_the_prompt(client: openai.OpenAI) -> None:
    text = "describe this picture in many words please"
    parts = [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]
    reply = client.chat.completions.create(model="m", messages=[{"role": "user", "content": parts}])
    assert reply.usage.prompt_tokens > count_tokens(text)


def test_prompt_longer_than_context_is_rejected(start_sim: StartSim) -> None:
    sim = start_sim(context_window=64)
    with sdk(sim.base_url) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            ask(client, "word " * 100)
        assert caught.value.code == "context_length_exceeded"
        assert "maximum context length is 64 tokens" in caught.value.message
        with pytest.raises(openai.BadRequestError) as too_much:
            ask(client, "hi", max_tokens=60)
        assert too_much.value.code == "context_length_exceeded"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (b"[1, 2]", None),
        (b'{"model": "m"}', "messages"),
        (b'{"model": "m", "messages": []}', "messages"),
        (b'{"model": "m", "messages": "hi"}', "messages"),
        (b'{"model": "m", "messages": [{"content": "hi"}]}', "messages[0].role"),
        (b'{"model": "m", "messages": [{"role": "wizard", "content": "hi"}]}', "messages[0].role"),
        (b'{"messages": [{"role": "user", "content": "hi"}]}', "model"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": 0}', "n"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": "x"}', "max_tokens"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "stop": 3}', "stop"),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream_options": {}}',
            "stream_options",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], '
            b'"response_format": {"type": "xml"}}',
            "response_format.type",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function", '
            b'"function": {"name": "a"}}], "tool_choice": {"type": "function", "function": {"name": "b"}}}',
            "tool_choice",
        ),
    ],
)
def test_bad_requests_get_openai_errors(
    http: httpx.Client, sim: SimServerThread, body: bytes, param: str
) -> None:
    response = http.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["message"]
    assert stats(sim)["invalid"] == 1


def test_api_key_is_required_when_configured(start_sim: StartSim) -> None:
    sim = start_sim(api_key="secret")
    with sdk(sim.base_url, api_key="wrong") as wrong:
        with pytest.raises(openai.AuthenticationError) as caught:
            ask(wrong)
        assert caught.value.code == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            wrong.models.list()
    with sdk(sim.base_url, api_key="secret") as right:
        assert ask(right).choices[0].message.content
    assert get(sim.url + "/health").status_code == 200


def test_models_health_and_unknown_routes(client: openai.OpenAI, http: httpx.Client) -> None:
    assert [m.id for m in client.models.list()] == ["sim-small", "sim-large"]
    assert client.models.retrieve("org/any-model").id == "org/any-model"
    assert http.get("/health").json() == {"status": "ok"}
    missing = http.post("/v1/nothing-here", json={})
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "invalid_request_error"
