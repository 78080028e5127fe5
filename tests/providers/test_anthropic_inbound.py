"""The Anthropic front door's request translation: Anthropic requests in, OpenAI requests out."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest

from interlock.core.errors import InvalidRequest
from interlock.providers.anthropic_inbound import anthropic_request_to_openai
from interlock.providers.anthropic_outbound import openai_request_to_anthropic
from tests.providers.fixture_files import load


def request(*messages: Any, **extra: Any) -> dict[str, Any]:
    return {"model": "claude", "max_tokens": 100, "messages": list(messages), **extra}


USER = {"role": "user", "content": "Hi"}


# --- requests ----------------------------------------------------------------------------------


def test_request_fixture_translates_every_part() -> None:
    out = anthropic_request_to_openai(load("anthropic_request_tools.json"))

    assert out["model"] == "claude-sonnet-4-5"
    assert out["max_tokens"] == 1024
    assert out["stream"] is True
    assert out["stream_options"] == {"include_usage": True}
    assert out["stop"] == ["END"]
    assert out["temperature"] == 0.2
    assert out["top_k"] == 40
    assert out["user"] == "user-42"
    assert "thinking" not in out
    assert out["tool_choice"] == "auto"
    assert out["parallel_tool_calls"] is False
    assert out["tools"][0] == {
        "type": "function",
        "function": {
            "name": "bash",
            "description": "Run a shell command",
            "parameters": {
                "type": "object",
                "properties": {"command": {"type": "string"}},
                "required": ["command"],
            },
        },
    }
    system, user, assistant, ls_result, shot_result, follow_up = out["messages"]
    assert system == {
        "role": "system",
        "content": [
            {"type": "text", "text": "You are a careful coding agent."},
            {
                "type": "text",
                "text": "Project instructions: keep answers short.",
                "prompt_cache_breakpoint": {"mode": "explicit"},
            },
        ],
    }
    assert user == {"role": "user", "content": "List the files, then show me a screenshot."}
    assert assistant["content"] == "I'll list them."
    assert [
        (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
        for c in assistant["tool_calls"]
    ] == [
        ("toolu_01D7FLrfh4GYq7yT1ULFeyMV", "bash", {"command": "ls"}),
        ("toolu_01ScreenShotXyz", "screenshot", {}),
    ]
    assert ls_result == {
        "role": "tool",
        "tool_call_id": "toolu_01D7FLrfh4GYq7yT1ULFeyMV",
        "content": "README.md\nsrc",
    }
    assert shot_result == {
        "role": "tool",
        "tool_call_id": "toolu_01ScreenShotXyz",
        "content": [{"type": "text", "text": "Error:"}, {"type": "text", "text": "display :0 not found"}],
    }
    # the tool result's image moves to the user message after the tool messages
    assert follow_up == {
        "role": "user",
        "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "text", "text": "What went wrong?", "prompt_cache_breakpoint": {"mode": "explicit"}},
        ],
    }


def test_request_translation_does_not_mutate_the_body() -> None:
    body = load("anthropic_request_tools.json")
    before = copy.deepcopy(body)
    anthropic_request_to_openai(body)
    assert body == before


@pytest.mark.parametrize(
    ("system", "expected"),
    [
        (None, []),
        ("", []),
        ("Be brief.", [{"role": "system", "content": "Be brief."}]),
        ([{"type": "text", "text": "Be brief."}], [{"role": "system", "content": "Be brief."}]),
        ([], []),
    ],
)
def test_system_forms(system: Any, expected: list[dict[str, Any]]) -> None:
    body = request(USER) if system is None else request(USER, system=system)
    assert anthropic_request_to_openai(body)["messages"] == [*expected, USER]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "f"}, {"type": "function", "function": {"name": "f"}}),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: Any) -> None:
    tools = [{"name": "f", "input_schema": {"type": "object"}}]
    out = anthropic_request_to_openai(request(USER, tools=tools, tool_choice=choice))
    assert out["tool_choice"] == expected
    assert "parallel_tool_calls" not in out


def test_tool_choice_without_tools_is_dropped() -> None:
    out = anthropic_request_to_openai(
        request(USER, tool_choice={"type": "any", "disable_parallel_tool_use": True})
    )
    assert "tool_choice" not in out
    assert "parallel_tool_calls" not in out


def test_structured_output_becomes_response_format() -> None:
    schema = {"type": "object", "properties": {}, "additionalProperties": False}
    out = anthropic_request_to_openai(
        request(USER, output_config={"format": {"type": "json_schema", "schema": schema}})
    )
    assert out["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": schema, "strict": True},
    }


def test_documents_and_url_images() -> None:
    content = [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"},
        },
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain words"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
    ]
    out = anthropic_request_to_openai(request({"role": "user", "content": content}))
    assert out["messages"][0]["content"] == [
        {
            "type": "file",
            "file": {"file_data": "data:application/pdf;base64,JVBERi0x", "filename": "document.pdf"},
        },
        {"type": "text", "text": "plain words"},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
    ]


def test_tool_result_forms() -> None:
    content = [
        {"type": "tool_result", "tool_use_id": "t1"},
        {"type": "tool_result", "tool_use_id": "t2", "content": "boom", "is_error": True},
        {"type": "tool_result", "tool_use_id": "t3", "content": "ok", "cache_control": {"type": "ephemeral"}},
    ]
    out = anthropic_request_to_openai(request({"role": "user", "content": content}))
    assert out["messages"] == [
        {"role": "tool", "tool_call_id": "t1", "content": ""},
        {"role": "tool", "tool_call_id": "t2", "content": "Error: boom"},
        {
            "role": "tool",
            "tool_call_id": "t3",
            "content": [{"type": "text", "text": "ok", "prompt_cache_breakpoint": {"mode": "explicit"}}],
        },
    ]


INVALID_REQUESTS: list[tuple[Any, str | None]] = [
    ([], None),
    ("hello", None),
    ({"max_tokens": 10, "messages": [USER]}, "model"),
    (request(USER, model=""), "model"),
    (request(USER, model=7), "model"),
    ({"model": "m", "messages": [USER]}, "max_tokens"),
    (request(USER, max_tokens=0), "max_tokens"),
    (request(USER, max_tokens=-5), "max_tokens"),
    (request(USER, max_tokens="100"), "max_tokens"),
    (request(USER, max_tokens=True), "max_tokens"),
    (request(USER, max_tokens=1.5), "max_tokens"),
    (request(), "messages"),
    (dict(request(), messages={"role": "user"}), "messages"),
    (request("hi"), "messages.0"),
    (request({"role": "system", "content": "x"}), "messages.0.role"),
    (request({"content": "x"}), "messages.0.role"),
    (request({"role": "user"}), "messages.0.content"),
    (request({"role": "user", "content": 5}), "messages.0.content"),
    (request({"role": "user", "content": []}), "messages.0.content"),
    (request({"role": "user", "content": ["text"]}), "messages.0.content.0"),
    (request({"role": "user", "content": [{"text": "no type"}]}), "messages.0.content.0"),
    (request({"role": "user", "content": [{"type": "video", "url": "x"}]}), "messages.0.content.0.type"),
    (request({"role": "user", "content": [{"type": "text"}]}), "messages.0.content.0"),
    (request({"role": "user", "content": [{"type": "text", "text": ["a"]}]}), "messages.0.content.0"),
    (request({"role": "user", "content": [{"type": "image"}]}), "messages.0.content.0.source"),
    (
        request({"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}),
        None,
    ),
    (
        request({"role": "user", "content": [{"type": "image", "source": {"type": "base64", "data": "x"}}]}),
        None,
    ),
    (
        request({"role": "user", "content": [{"type": "document", "source": {"type": "url", "url": "x"}}]}),
        None,
    ),
    (request({"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]}), None),
    (request({"role": "user", "content": [{"type": "tool_result"}]}), "messages.0.content.0.tool_use_id"),
    (request({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": 3}]}), None),
    (
        request(
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "is_error": "yes"}]}
        ),
        None,
    ),
    (
        request(
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "x"}]}],
            }
        ),
        None,
    ),
    (request(USER, {"role": "assistant", "content": [{"type": "tool_use", "name": "f", "input": {}}]}), None),
    (
        request(
            USER,
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": "{}"}]},
        ),
        None,
    ),
    (request(USER, {"role": "assistant", "content": [{"type": "image", "source": {}}]}), None),
    (request(USER, {"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "t"}]}), None),
    (request(USER, system=5), "system"),
    (request(USER, system=[{"type": "image"}]), "system.0"),
    (request(USER, system=["text"]), "system.0"),
    (request(USER, temperature="warm"), "temperature"),
    (request(USER, top_p=[1]), "top_p"),
    (request(USER, top_k=0.5), "top_k"),
    (request(USER, stop_sequences="END"), "stop_sequences"),
    (request(USER, stop_sequences=[1]), "stop_sequences"),
    (request(USER, stream="yes"), "stream"),
    (request(USER, metadata="x"), "metadata"),
    (request(USER, metadata={"user_id": 5}), "metadata.user_id"),
    (request(USER, tools={"name": "f"}), "tools"),
    (request(USER, tools=["f"]), "tools.0"),
    (request(USER, tools=[{"input_schema": {}}]), "tools.0.name"),
    (request(USER, tools=[{"name": "f"}]), "tools.0.input_schema"),
    (request(USER, tools=[{"name": "f", "input_schema": {}, "description": 1}]), "tools.0.description"),
    (request(USER, tools=[{"type": "web_search_20250305", "name": "web_search"}]), "tools.0"),
    (request(USER, tool_choice="auto"), "tool_choice"),
    (request(USER, tool_choice={"type": "sometimes"}), "tool_choice"),
    (
        request(USER, tools=[{"name": "f", "input_schema": {}}], tool_choice={"type": "tool"}),
        "tool_choice.name",
    ),
    (request(USER, output_config={"format": {"type": "json_schema"}}), "output_config.format"),
    (request(USER, output_config={"format": "json"}), "output_config.format"),
    (request(USER, output_config="json"), "output_config"),
]


@pytest.mark.parametrize(("body", "param"), INVALID_REQUESTS)
def test_invalid_requests_name_the_field(body: Any, param: str | None) -> None:
    with pytest.raises(InvalidRequest) as info:
        anthropic_request_to_openai(body)
    assert info.value.status == 400
    if param is not None:
        assert info.value.param == param
        assert param.split(".")[0] in info.value.message


BAD_VALUES: list[Any] = [None, 0, -1, 1.5, True, "", "x", [], [None], {}, {"type": None}, {"type": "text"}]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix] if prefix else []
    children = (
        value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    )
    for key, child in children:
        paths.extend(_paths(child, (*prefix, key)))
    return paths


def test_fuzzed_requests_fail_only_with_invalid_request() -> None:
    """Replace one value anywhere in a rich request with one of the wrong type: the translation either
    succeeds or raises InvalidRequest, never a KeyError, TypeError or AttributeError."""
    original = load("anthropic_request_tools.json")
    rng = random.Random(20240601)
    paths = _paths(original)
    outcomes = {"ok": 0, "invalid": 0}
    for path in paths:
        for bad in rng.sample(BAD_VALUES, 4):
            body = copy.deepcopy(original)
            target = body
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = copy.deepcopy(bad)
            try:
                anthropic_request_to_openai(body)
                outcomes["ok"] += 1
            except InvalidRequest:
                outcomes["invalid"] += 1
    assert outcomes["invalid"] > 100
    assert outcomes["ok"] > 10


# --- round trip --------------------------------------------------------------------------------


def test_anthropic_request_survives_the_openai_shape() -> None:
    """Anthropic request → OpenAI (front door) → Anthropic (adapter): what a Claude deployment receives."""
    original = load("anthropic_request_tools.json")
    back = openai_request_to_anthropic(anthropic_request_to_openai(original), default_max_tokens=1)
    for key in ("model", "max_tokens", "stop_sequences", "temperature", "top_k", "metadata", "stream"):
        assert back[key] == original[key], key
    assert back["system"][1]["cache_control"] == {"type": "ephemeral"}
    assert back["tools"] == original["tools"]
    assert back["tool_choice"] == original["tool_choice"]
    user, assistant, results = back["messages"]
    assert user == original["messages"][0]
    assert assistant["content"] == [b for b in original["messages"][1]["content"] if b["type"] != "thinking"]
    assert [b["type"] for b in results["content"]] == ["tool_result", "tool_result", "image", "text"]
    assert results["content"][0] == original["messages"][2]["content"][0]
    assert results["content"][3]["cache_control"] == {"type": "ephemeral"}
