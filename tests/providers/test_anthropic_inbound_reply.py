"""The Anthropic front door's reply translation: OpenAI replies back out as Anthropic messages and
event sequences that the official SDK's own accumulator accepts, and errors as Anthropic error bodies."""

from __future__ import annotations

import json
from typing import Any

import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message
from anthropic.types.shared import ErrorResponse

from interlock.core.errors import (
    AuthenticationFailed,
    BodyTooLarge,
    GatewayError,
    InvalidRequest,
    ModelNotFound,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    UpstreamBadResponse,
    UpstreamConnectError,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamStreamBroken,
    UpstreamTimeout,
)
from interlock.providers.anthropic_inbound_reply import (
    OpenAIStreamToAnthropic,
    anthropic_error_body,
    anthropic_error_type,
    openai_response_to_anthropic,
)
from interlock.providers.anthropic_outbound_reply import AnthropicStreamTranslator
from tests.providers.fixture_files import FIXTURES, load, sse_events

# --- complete replies --------------------------------------------------------------------------


def test_text_completion_becomes_a_message() -> None:
    out = openai_response_to_anthropic(load("openai_chat_completion_text.json"), model="claude-alias")
    Message.model_validate(out)
    assert out == {
        "id": "msg_chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "type": "message",
        "role": "assistant",
        "model": "claude-alias",
        "content": [{"type": "text", "text": "Hello! How can I assist you today?"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 2019 - 1920,
            "output_tokens": 10,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 1920,
        },
    }


def test_tool_call_completion_becomes_tool_use() -> None:
    out = openai_response_to_anthropic(load("openai_chat_completion_tool_calls.json"), model="m")
    Message.model_validate(out)
    assert out["content"] == [
        {
            "type": "tool_use",
            "id": "call_abc123",
            "name": "get_current_weather",
            "input": {"location": "Boston, MA"},
        }
    ]
    assert out["stop_reason"] == "tool_use"
    assert out["usage"]["input_tokens"] == 82


def test_adapter_ids_round_trip() -> None:
    completion = dict(load("openai_chat_completion_text.json"), id="chatcmpl-msg_01ABC")
    assert openai_response_to_anthropic(completion, model="m")["id"] == "msg_01ABC"
    completion["id"] = "msg_02DEF"
    assert openai_response_to_anthropic(completion, model="m")["id"] == "msg_02DEF"


@pytest.mark.parametrize(
    ("finish_reason", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
        (None, "end_turn"),
    ],
)
def test_stop_reasons(finish_reason: str | None, stop_reason: str) -> None:
    completion = load("openai_chat_completion_text.json")
    completion["choices"][0]["finish_reason"] = finish_reason
    assert openai_response_to_anthropic(completion, model="m")["stop_reason"] == stop_reason


def test_refusal_becomes_refusal_text() -> None:
    completion = load("openai_chat_completion_text.json")
    completion["choices"][0]["message"].update(content=None, refusal="I can't help with that.")
    out = openai_response_to_anthropic(completion, model="m")
    assert out["content"] == [{"type": "text", "text": "I can't help with that."}]
    assert out["stop_reason"] == "refusal"


@pytest.mark.parametrize("arguments", ["{broken", "[1]"])
def test_tool_arguments_that_are_not_an_object_are_a_bad_response(arguments: str) -> None:
    completion = load("openai_chat_completion_tool_calls.json")
    completion["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = arguments
    with pytest.raises(UpstreamBadResponse, match="get_current_weather"):
        openai_response_to_anthropic(completion, model="m")


@pytest.mark.parametrize("body", [{}, {"choices": []}, {"choices": [{"message": "x"}]}, {"choices": "x"}])
def test_completion_without_message_is_a_bad_response(body: dict[str, Any]) -> None:
    with pytest.raises(UpstreamBadResponse):
        openai_response_to_anthropic(body, model="m")


# --- streams -----------------------------------------------------------------------------------


def check_grammar(events: list[tuple[str, dict[str, Any]]]) -> None:
    """message_start (content_block_start content_block_delta* content_block_stop)* message_delta
    message_stop, block indexes counting up from 0, every event's data carrying its own name as ``type``."""
    names = [name for name, _ in events]
    assert all(data["type"] == name for name, data in events)
    assert names[0] == "message_start"
    assert names[-2:] == ["message_delta", "message_stop"]
    expected_index, open_index = 0, None
    for name, data in events[1:-2]:
        if name == "content_block_start":
            assert open_index is None
            assert data["index"] == expected_index
            open_index, expected_index = expected_index, expected_index + 1
        elif name in ("content_block_delta", "content_block_stop"):
            assert data["index"] == open_index
            if name == "content_block_stop":
                open_index = None
        else:
            raise AssertionError(f"unexpected {name} inside the message")
    assert open_index is None


def sdk_message(events: list[tuple[str, dict[str, Any]]]) -> Any:
    """What the anthropic SDK's own stream accumulator builds from the events."""
    snapshot = None
    json_bufs: dict[int, bytes] = {}
    for _, data in events:
        snapshot = accumulate_event(event=data, current_snapshot=snapshot, json_bufs=json_bufs)  # type: ignore[arg-type]
    return snapshot


def openai_chunks(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines()]


def test_openai_tool_call_stream_becomes_an_anthropic_event_sequence() -> None:
    translator = OpenAIStreamToAnthropic("claude-alias")
    events = [
        event for chunk in openai_chunks("openai_stream_tool_calls.jsonl") for event in translator.feed(chunk)
    ]
    events += translator.close()
    check_grammar(events)
    message = sdk_message(events)
    assert message.id == "msg_chatcmpl-9yqLQ2o1x"
    assert message.model == "claude-alias"
    assert [block.type for block in message.content] == ["text", "tool_use", "tool_use"]
    assert message.content[0].text == "Let me look that up."
    assert (message.content[1].id, message.content[1].name, message.content[1].input) == (
        "call_DdmO9pD3xa9XTPNJ32zg2hcA",
        "get_weather",
        {"location": "Paris"},
    )
    assert message.content[2].input == {"tz": "Europe/Paris"}
    assert message.stop_reason == "tool_use"
    assert (
        message.usage.input_tokens,
        message.usage.cache_read_input_tokens,
        message.usage.output_tokens,
    ) == (
        190 - 128,
        128,
        42,
    )


def test_text_is_never_held_back_and_finish_waits_for_usage() -> None:
    translator = OpenAIStreamToAnthropic("m")
    chunks = openai_chunks("openai_stream_tool_calls.jsonl")
    first = translator.feed(chunks[0])
    assert [name for name, _ in first] == ["message_start"]
    second = translator.feed(chunks[1])
    assert second[-1] == (
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me look"}},
    )
    for chunk in chunks[2:-2]:
        translator.feed(chunk)
    finish = translator.feed(chunks[-2])
    assert [name for name, _ in finish] == ["content_block_stop"]  # the finish reason waits for usage
    last = translator.feed(chunks[-1])
    assert [name for name, _ in last] == ["message_delta", "message_stop"]
    assert last[0][1]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert last[0][1]["usage"]["output_tokens"] == 42
    assert translator.close() == []
    assert translator.feed(chunks[-1]) == []


def test_close_without_usage_or_finish_still_completes_the_message() -> None:
    translator = OpenAIStreamToAnthropic("m")
    events = translator.feed({"id": "x", "choices": [{"index": 0, "delta": {"content": "partial"}}]})
    events += translator.close()
    check_grammar(events)
    message = sdk_message(events)
    assert message.content[0].text == "partial"
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 0
    assert translator.close() == []


def test_close_on_an_empty_stream_gives_an_empty_message() -> None:
    events = OpenAIStreamToAnthropic("m").close()
    check_grammar(events)
    assert sdk_message(events).content == []


def test_odd_chunks_are_tolerated() -> None:
    translator = OpenAIStreamToAnthropic("m")
    events = translator.feed({"choices": "nope"})
    events += translator.feed({"choices": [None, {"index": 1, "delta": {"content": "other choice"}}]})
    events += translator.feed(
        {"choices": [{"index": 0, "delta": {"tool_calls": [None, {"function": {"arguments": {"a": 1}}}]}}]}
    )
    events += translator.feed(
        {"choices": [{"index": 0, "delta": {"refusal": "No."}, "finish_reason": "stop"}]}
    )
    events += translator.close()
    check_grammar(events)
    message = sdk_message(events)
    assert message.content[0].type == "tool_use"
    assert message.content[0].id.startswith("toolu_")
    assert message.content[0].input == {"a": 1}
    assert message.content[1].text == "No."
    assert message.stop_reason == "refusal"


@pytest.mark.parametrize("fixture", ["anthropic_stream_text.sse", "anthropic_stream_tool_use.sse"])
def test_anthropic_stream_survives_the_openai_shape(fixture: str) -> None:
    """Anthropic events → OpenAI chunks (adapter) → Anthropic events (front door): the SDK builds the
    same message from both ends."""
    original = [(name or "", data) for name, data in sse_events(fixture)]
    adapter = AnthropicStreamTranslator()
    front = OpenAIStreamToAnthropic(original[0][1]["message"]["model"])
    events = [e for name, data in original for chunk in adapter.feed(name, data) for e in front.feed(chunk)]
    events += front.close()
    check_grammar(events)
    expected = sdk_message([(n, d) for n, d in original if n != "ping"])
    got = sdk_message(events)
    assert got.id == expected.id
    assert got.model == expected.model
    assert got.content == expected.content
    assert got.stop_reason == expected.stop_reason
    for field in ("input_tokens", "output_tokens", "cache_read_input_tokens"):
        assert getattr(got.usage, field) == getattr(expected.usage, field), field


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (InvalidRequest("x"), "invalid_request_error"),
        (UpstreamRejected("x"), "invalid_request_error"),
        (BodyTooLarge("x"), "request_too_large"),
        (AuthenticationFailed("x"), "authentication_error"),
        (PermissionDenied("x"), "permission_error"),
        (ModelNotFound("x"), "not_found_error"),
        (NotFound("x"), "not_found_error"),
        (RateLimited("x"), "rate_limit_error"),
        (UpstreamRateLimited("x"), "rate_limit_error"),
        (ServiceUnavailable("x"), "overloaded_error"),
        (UpstreamConnectError("x"), "overloaded_error"),
        (UpstreamError("x", status=529), "overloaded_error"),
        (UpstreamTimeout("x"), "timeout_error"),
        (UpstreamError("x"), "api_error"),
        (UpstreamStreamBroken("x"), "api_error"),
        (GatewayError("x"), "api_error"),
        (InvalidRequest("x", status=422), "invalid_request_error"),
    ],
)
def test_error_types(error: GatewayError, expected: str) -> None:
    assert anthropic_error_type(error) == expected
    body = anthropic_error_body(error.status, anthropic_error_type(error), error.message)
    assert body == {"type": "error", "error": {"type": expected, "message": "x"}}
    if expected != "request_too_large":  # documented for 413, yet missing from the SDK's union
        ErrorResponse.model_validate(body)


def test_error_body_type_defaults_from_status() -> None:
    assert anthropic_error_body(429, None, "slow down")["error"] == {
        "type": "rate_limit_error",
        "message": "slow down",
    }
    assert anthropic_error_body(500, None, "oops")["error"]["type"] == "api_error"
