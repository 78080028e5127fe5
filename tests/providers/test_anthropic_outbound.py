"""The Anthropic adapter's translation: OpenAI requests out, Anthropic messages and events back."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from interlock.errors import InvalidRequest, UpstreamBadResponse, UpstreamStreamBroken
from interlock.providers.anthropic_inbound import anthropic_request_to_openai
from interlock.providers.anthropic_outbound import (
    AnthropicStreamTranslator,
    anthropic_response_to_openai,
    openai_request_to_anthropic,
)

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def sse_events(name: str) -> list[tuple[str | None, dict[str, Any]]]:
    events = []
    for frame in (FIXTURES / name).read_text().strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in frame.splitlines())
        events.append((fields.get("event"), json.loads(fields["data"])))
    return events


def translate(body: dict[str, Any], default_max_tokens: int = 4096) -> dict[str, Any]:
    return openai_request_to_anthropic(body, default_max_tokens=default_max_tokens)


def chat(*messages: Any, **extra: Any) -> dict[str, Any]:
    return {"model": "claude", "messages": list(messages), **extra}


USER = {"role": "user", "content": "Hi"}


# --- requests ----------------------------------------------------------------------------------


def test_request_fixture_translates_every_part() -> None:
    out = translate(load("openai_request_tools.json"))

    assert out["model"] == "claude-sonnet-4-5"
    assert out["system"] == "You are a helpful weather assistant."
    assert out["max_tokens"] == 512
    assert out["temperature"] == 0.5
    assert out["stop_sequences"] == ["\n\nHuman:"]
    assert out["metadata"] == {"user_id": "user-1234"}
    assert "stream" not in out
    user, assistant, results = out["messages"]
    assert user["role"] == "user"
    assert user["content"][0] == {
        "type": "text",
        "text": "What is the weather where this photo was taken, and in Paris?",
    }
    assert user["content"][1]["source"]["type"] == "base64"
    assert user["content"][1]["source"]["media_type"] == "image/png"
    assert user["content"][1]["source"]["data"].startswith("iVBORw0KGgo")
    assert user["content"][2]["source"] == {
        "type": "url",
        "url": "https://upload.wikimedia.org/wikipedia/commons/a/a7/Camponotus_flavomarginatus_ant.jpg",
    }
    assert assistant == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me check both."},
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"location": "Boston, MA"}},
            {
                "type": "tool_use",
                "id": "toolu_2",
                "name": "get_weather",
                "input": {"location": "Paris", "unit": "celsius"},
            },
        ],
    }
    # both tool results and the following user text merge into the one user turn Anthropic wants
    assert results == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "72F and sunny"},
            {
                "type": "tool_result",
                "tool_use_id": "toolu_2",
                "content": [{"type": "text", "text": "18C"}, {"type": "text", "text": "light rain"}],
            },
            {"type": "text", "text": "Thanks. Which one is warmer?"},
        ],
    }
    assert out["tools"] == [
        {
            "name": "get_weather",
            "description": "Get the current weather in a given location",
            "input_schema": load("openai_request_tools.json")["tools"][0]["function"]["parameters"],
        }
    ]
    assert out["tool_choice"] == {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True}


def test_max_tokens_default_and_precedence() -> None:
    assert translate(chat(USER), default_max_tokens=1234)["max_tokens"] == 1234
    assert translate(chat(USER, max_tokens=50))["max_tokens"] == 50
    assert translate(chat(USER, max_tokens=50, max_completion_tokens=70))["max_tokens"] == 70


def test_n_above_one_is_refused() -> None:
    with pytest.raises(InvalidRequest, match=r"n > 1 is not supported by Anthropic deployments"):
        translate(chat(USER, n=2))
    assert translate(chat(USER, n=1))["messages"] == [USER]


def test_system_and_developer_messages_are_hoisted_in_order() -> None:
    out = translate(
        chat(
            {"role": "system", "content": "A"},
            USER,
            {
                "role": "developer",
                "content": [{"type": "text", "text": "B", "prompt_cache_breakpoint": {"mode": "explicit"}}],
            },
            {"role": "system", "content": ""},
        )
    )
    assert out["system"] == [
        {"type": "text", "text": "A"},
        {"type": "text", "text": "B", "cache_control": {"type": "ephemeral"}},
    ]
    assert out["messages"] == [USER]


def test_consecutive_same_role_messages_merge() -> None:
    out = translate(chat(USER, {"role": "user", "content": [{"type": "text", "text": "again"}]}))
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "again"}]}
    ]


def test_empty_assistant_messages_are_dropped_and_empty_text_skipped() -> None:
    call = {"id": "call_9", "type": "function", "function": {"name": "f", "arguments": ""}}
    out = translate(
        chat(
            USER,
            {"role": "assistant", "content": ""},
            {"role": "assistant", "content": "", "tool_calls": [call]},
        )
    )
    assert out["messages"][1] == {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "call_9", "name": "f", "input": {}}],
    }


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]", "42"])
def test_tool_arguments_that_are_not_a_json_object_are_refused(arguments: str) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": arguments}}
    with pytest.raises(InvalidRequest, match=r"messages\[1\]\.tool_calls\[0\]\.function\.arguments"):
        translate(chat(USER, {"role": "assistant", "content": None, "tool_calls": [call]}))


TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("required", None, {"type": "any"}),
        ("none", None, {"type": "none"}),
        ({"type": "function", "function": {"name": "f"}}, None, {"type": "tool", "name": "f"}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        ("none", False, {"type": "none"}),
        (None, None, None),
    ],
)
def test_tool_choice(choice: Any, parallel: Any, expected: Any) -> None:
    extra: dict[str, Any] = {"tools": [TOOL]}
    if choice is not None:
        extra["tool_choice"] = choice
    if parallel is not None:
        extra["parallel_tool_calls"] = parallel
    out = translate(chat(USER, **extra))
    assert out.get("tool_choice") == expected
    assert out["tools"] == [{"name": "f", "input_schema": {"type": "object", "properties": {}}}]


def test_tool_choice_without_tools_is_dropped() -> None:
    out = translate(chat(USER, tool_choice="required", parallel_tool_calls=False, tools=[]))
    assert "tool_choice" not in out
    assert "tools" not in out


def test_response_format_json_schema_uses_structured_outputs() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": False}
    fmt = {"type": "json_schema", "json_schema": {"name": "thing", "schema": schema, "strict": True}}
    out = translate(chat(USER, response_format=fmt))
    assert out["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert "system" not in out


def test_response_format_json_object_adds_a_system_instruction() -> None:
    out = translate(
        chat({"role": "system", "content": "Be terse."}, USER, response_format={"type": "json_object"})
    )
    assert out["system"][0] == {"type": "text", "text": "Be terse."}
    assert "JSON object" in out["system"][1]["text"]
    assert "output_config" not in out
    assert "system" not in translate(chat(USER, response_format={"type": "text"}))


def test_sampling_options() -> None:
    out = translate(
        chat(USER, temperature=1.7, top_p=0.9, top_k=20, stop="END", seed=7, presence_penalty=1, stream=True)
    )
    assert out["temperature"] == 1.0
    assert out["top_p"] == 0.9
    assert out["top_k"] == 20
    assert out["stop_sequences"] == ["END"]
    assert out["stream"] is True
    assert "seed" not in out
    assert "presence_penalty" not in out


def test_pdf_file_part_becomes_a_document_block() -> None:
    part = {
        "type": "file",
        "file": {"file_data": "data:application/pdf;base64,JVBERi0x", "filename": "a.pdf"},
    }
    out = translate(chat({"role": "user", "content": [part]}))
    assert out["messages"][0]["content"] == [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"},
        }
    ]


@pytest.mark.parametrize(
    "body",
    [
        chat(),
        {"model": "m", "messages": "hello"},
        chat("not an object"),
        chat({"role": "wizard", "content": "x"}),
        chat({"role": "function", "name": "f", "content": "x"}),
        chat({"role": "user", "content": 5}),
        chat({"role": "user"}),
        chat(
            {
                "role": "user",
                "content": [{"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}],
            }
        ),
        chat({"role": "user", "content": ["bare string"]}),
        chat({"role": "user", "content": [{"type": "text", "text": 3}]}),
        chat({"role": "user", "content": [{"type": "image_url", "image_url": {}}]}),
        chat(
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,abc"}}]}
        ),
        chat({"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}),
        chat(USER, {"role": "tool", "content": "x"}),
        chat(USER, {"role": "assistant", "tool_calls": "nope"}),
        chat(USER, {"role": "assistant", "tool_calls": [{"id": "c", "type": "custom", "custom": {}}]}),
        chat(USER, {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f"}}]}),
        chat(USER, {"role": "assistant", "content": 7}),
        chat(USER, {"role": "assistant", "content": [{"type": "image_url"}]}),
        chat(USER, {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": "{}"}}),
        chat(USER, tools=[{"type": "custom", "custom": {"name": "x"}}]),
        chat(USER, tools=[{"type": "function", "function": {"description": "no name"}}]),
        chat(USER, tools="f"),
        chat(USER, tools=[TOOL], tool_choice="sometimes"),
        chat(USER, tools=[TOOL], tool_choice={"type": "function"}),
        chat(USER, stop=5),
        chat(USER, stop=["a", 1]),
        chat(USER, temperature="hot"),
        chat(USER, temperature=True),
        chat(USER, top_p="x"),
        chat(USER, top_k=1.5),
        chat(USER, max_tokens=0),
        chat(USER, max_completion_tokens="10"),
        chat(USER, response_format={"type": "yaml"}),
        chat(USER, response_format={"type": "json_schema", "json_schema": {"name": "x"}}),
        chat(USER, response_format="json"),
    ],
)
def test_malformed_requests_raise_invalid_request(body: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest) as info:
        translate(body)
    assert info.value.status == 400
    assert info.value.message


def test_translation_does_not_mutate_the_request() -> None:
    body = load("openai_request_tools.json")
    before = copy.deepcopy(body)
    translate(body)
    assert body == before


# --- round trip --------------------------------------------------------------------------------


def _normalized(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Content as lists of parts, tool arguments parsed, image ``detail`` (no Anthropic equivalent) gone."""
    out = []
    for message in messages:
        message = dict(message)
        content = message.get("content")
        if isinstance(content, str) and (message["role"] == "user" or not content):
            message["content"] = [{"type": "text", "text": content}] if content else None
        elif isinstance(content, list):
            message["content"] = [
                {"type": p["type"], "image_url": {"url": p["image_url"]["url"]}}
                if p["type"] == "image_url"
                else p
                for p in content
            ]
        if "tool_calls" in message:
            message["tool_calls"] = [
                {**c, "function": {**c["function"], "arguments": json.loads(c["function"]["arguments"])}}
                for c in message["tool_calls"]
            ]
        out.append(message)
    return out


def _merge_user_turns(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged: list[dict[str, Any]] = []
    for message in messages:
        if merged and message["role"] == "user" and merged[-1]["role"] == "user":
            merged[-1] = {"role": "user", "content": merged[-1]["content"] + message["content"]}
        else:
            merged.append(message)
    return merged


def test_openai_request_round_trips_through_the_anthropic_shape() -> None:
    original = load("openai_request_tools.json")
    anthropic_body = translate(original)
    back = anthropic_request_to_openai(anthropic_body)

    assert _merge_user_turns(_normalized(back["messages"])) == _merge_user_turns(
        _normalized(original["messages"])
    )
    assert back["tools"] == original["tools"]
    assert back["tool_choice"] == original["tool_choice"]
    assert back["parallel_tool_calls"] is False
    for key in ("model", "max_tokens", "temperature", "stop", "user"):
        assert back[key] == original[key], key


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
