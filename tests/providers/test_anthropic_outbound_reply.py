"""The Anthropic adapter's reply translation: Anthropic messages and events back as OpenAI shapes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from interlock.core.errors import UpstreamBadResponse, UpstreamStreamBroken
from interlock.providers.anthropic_outbound_reply import (
    AnthropicStreamTranslator,
    anthropic_response_to_openai,
)
from tests.providers.fixture_files import load, sse_events

# --- complete replies --------------------------------------------------------------------------


def test_text_message_becomes_a_chat_completion() -> None:
    out = anthropic_response_to_openai(load("anthropic_message_text.json"))
    ChatCompletion.model_validate(out)
    assert out["id"] == "chatcmpl-msg_01XFDUDYJgAACzvnptvVoYEL"
    assert out["object"] == "chat.completion"
    assert out["model"] == "claude-sonnet-4-5-20250929"
    assert out["choices"][0]["message"]["content"] == "Hello! How can I help you today?"
    assert "tool_calls" not in out["choices"][0]["message"]
    assert out["choices"][0]["finish_reason"] == "stop"
    assert out["usage"] == {
        "prompt_tokens": 12,
        "completion_tokens": 11,
        "total_tokens": 23,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


def test_tool_use_message_becomes_tool_calls_with_cache_counted_in_prompt() -> None:
    out = anthropic_response_to_openai(load("anthropic_message_tool_use.json"))
    ChatCompletion.model_validate(out)
    message = out["choices"][0]["message"]
    assert message["content"] == "I'll check the current weather in San Francisco for you."
    (call,) = message["tool_calls"]
    assert call["id"] == "toolu_01A09q90qw90lq917835lq9"
    assert call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"location": "San Francisco, CA", "unit": "celsius"}
    assert out["choices"][0]["finish_reason"] == "tool_calls"
    assert out["usage"]["prompt_tokens"] == 312 + 2048 + 100
    assert out["usage"]["prompt_tokens_details"] == {"cached_tokens": 2048}
    assert out["usage"]["total_tokens"] == 312 + 2048 + 100 + 68


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("model_context_window_exceeded", "length"),
        (None, "stop"),
    ],
)
def test_stop_reasons(stop_reason: str | None, finish_reason: str) -> None:
    message = dict(load("anthropic_message_text.json"), stop_reason=stop_reason)
    assert anthropic_response_to_openai(message)["choices"][0]["finish_reason"] == finish_reason


def test_thinking_blocks_become_reasoning_content() -> None:
    message = load("anthropic_message_text.json")
    message["content"].insert(0, {"type": "thinking", "thinking": "Greet back.", "signature": "sig"})
    assert (
        anthropic_response_to_openai(message)["choices"][0]["message"]["reasoning_content"] == "Greet back."
    )


@pytest.mark.parametrize("message", [{}, {"type": "error"}, {"type": "message", "content": "text"}])
def test_something_other_than_a_message_is_a_bad_response(message: dict[str, Any]) -> None:
    with pytest.raises(UpstreamBadResponse):
        anthropic_response_to_openai(message)


# --- streams -----------------------------------------------------------------------------------


def run_stream(name: str) -> tuple[list[dict[str, Any]], AnthropicStreamTranslator]:
    translator = AnthropicStreamTranslator()
    chunks = [chunk for event, data in sse_events(name) for chunk in translator.feed(event, data)]
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
    return chunks, translator


def test_text_stream() -> None:
    chunks, translator = run_stream("anthropic_stream_text.sse")
    assert translator.finished
    assert {c["id"] for c in chunks} == {"chatcmpl-msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY"}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    texts = [c["choices"][0]["delta"].get("content") for c in chunks[1:-2]]
    assert texts == ["Hello", "!"]
    assert chunks[-2]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop", "logprobs": None}
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 25,
        "completion_tokens": 15,
        "total_tokens": 40,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


def test_tool_use_stream() -> None:
    chunks, translator = run_stream("anthropic_stream_tool_use.sse")
    assert translator.finished
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Okay, let's check the weather for San Francisco, CA:"
    calls = [call for c in chunks if c["choices"] for call in c["choices"][0]["delta"].get("tool_calls", [])]
    first = calls[0]
    assert first == {
        "index": 0,
        "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert all(call["index"] == 0 and "id" not in call for call in calls[1:])
    assert all(call["function"]["arguments"] for call in calls[1:])  # the empty fragment is skipped
    arguments = "".join(call["function"]["arguments"] for call in calls)
    assert json.loads(arguments) == {"location": "San Francisco, CA", "unit": "fahrenheit"}
    finish = [
        c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]
    ]
    assert finish == ["tool_calls"]
    assert chunks[-1]["usage"]["prompt_tokens"] == 472 + 1024
    assert chunks[-1]["usage"]["prompt_tokens_details"] == {"cached_tokens": 1024}
    assert chunks[-1]["usage"]["completion_tokens"] == 89


def test_error_event_breaks_the_stream() -> None:
    translator = AnthropicStreamTranslator("claude-eu")
    events = sse_events("anthropic_stream_error.sse")
    for event, data in events[:-1]:
        translator.feed(event, data)
    with pytest.raises(UpstreamStreamBroken, match="overloaded_error: Overloaded") as info:
        translator.feed(*events[-1])
    assert info.value.retryable
    assert "claude-eu" in info.value.message


def test_stream_without_message_stop_is_not_finished() -> None:
    translator = AnthropicStreamTranslator()
    for event, data in sse_events("anthropic_stream_text.sse")[:-1]:
        translator.feed(event, data)
    assert not translator.finished


def test_events_before_message_start_are_a_bad_response() -> None:
    translator = AnthropicStreamTranslator()
    assert translator.feed("ping", {"type": "ping"}) == []
    with pytest.raises(UpstreamBadResponse, match="before message_start"):
        translator.feed("content_block_start", {"type": "content_block_start", "index": 0})


def test_thinking_deltas_become_reasoning_content_and_unknown_events_are_ignored() -> None:
    events = sse_events("anthropic_stream_text.sse")
    translator = AnthropicStreamTranslator()
    translator.feed(*events[0])
    start = {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}
    assert translator.feed("content_block_start", start) == []
    delta = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "thinking_delta", "thinking": "Hmm"},
    }
    assert translator.feed("content_block_delta", delta)[0]["choices"][0]["delta"] == {
        "reasoning_content": "Hmm"
    }
    signature = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "signature_delta", "signature": "x"},
    }
    assert translator.feed("content_block_delta", signature) == []
    assert translator.feed("some_future_event", {"type": "some_future_event"}) == []
    assert translator.feed(None, {"type": "content_block_delta", "index": "zero", "delta": {}}) == []


def test_message_stop_without_message_delta_still_finishes() -> None:
    events = sse_events("anthropic_stream_text.sse")
    translator = AnthropicStreamTranslator()
    chunks = [c for event, data in events if event != "message_delta" for c in translator.feed(event, data)]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["completion_tokens"] == 1
    assert translator.feed("message_stop", {"type": "message_stop"}) == []
