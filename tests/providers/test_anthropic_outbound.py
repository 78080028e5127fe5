"""The Anthropic adapter's request translation: OpenAI requests out as Anthropic Messages requests."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from interlock.core.errors import InvalidRequest
from interlock.providers.anthropic_inbound import anthropic_request_to_openai
from interlock.providers.anthropic_outbound import openai_request_to_anthropic
from tests.providers.fixture_files import load


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
