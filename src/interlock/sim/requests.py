"""Reading request bodies the way an engine's OpenAI front end does: validate, then render the prompt.

Bodies are parsed with orjson and checked by hand rather than through pydantic: this is the
simulator's hot path, and its error messages copy OpenAI's, field path and code included.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from interlock.sim.prompt import render_prompt
from interlock.sim.responses import ApiError
from interlock.sim.tokens import tokenize

__all__ = [
    "ChatRequest",
    "EmbeddingsRequest",
    "ToolSpec",
    "check_context",
    "parse_chat",
    "parse_embeddings",
    "parse_json",
]

_MAX_N = 128


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """The tool a request's answer will call."""

    name: str
    parameters: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A validated ``/v1/chat/completions`` request, its prompt already rendered and tokenized."""

    model: str
    prompt: str
    prompt_tokens: Sequence[str]
    n: int
    max_tokens: int
    max_tokens_explicit: bool
    stop: tuple[str, ...]
    seed: int | None
    stream: bool
    include_usage: bool
    response_format: Literal["text", "json_object", "json_schema"]
    schema: Mapping[str, Any] | None
    tool: ToolSpec | None
    tool_result: str | None


@dataclass(frozen=True, slots=True)
class EmbeddingsRequest:
    """A validated ``/v1/embeddings`` request."""

    model: str
    inputs: tuple[str, ...]
    token_counts: tuple[int, ...]
    base64: bool
    dimensions: int | None


def parse_json(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or the 400 OpenAI answers to a body that is not one."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise ApiError(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
            "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not "
            "valid JSON.)",
        )
    return data


def _model(data: Mapping[str, Any]) -> str:
    model = data.get("model")
    if model is None:
        raise ApiError(400, "you must provide a model parameter", param="model")
    if not isinstance(model, str) or not model:
        raise ApiError.invalid_type("model", "a non-empty string", model)
    return model


def _int_param(data: Mapping[str, Any], name: str, low: int, high: int | None = None) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError.invalid_type(name, "an integer", value)
    if value < low:
        raise ApiError(
            400,
            f"Invalid '{name}': integer below minimum value. Expected a value >= {low}, "
            f"but got {value} instead.",
            param=name,
            code="integer_below_min_value",
        )
    if high is not None and value > high:
        raise ApiError(
            400,
            f"Invalid '{name}': integer above maximum value. Expected a value <= {high}, "
            f"but got {value} instead.",
            param=name,
            code="integer_above_max_value",
        )
    return value


def _stop(data: Mapping[str, Any]) -> tuple[str, ...]:
    stop = data.get("stop")
    if stop is None:
        return ()
    if isinstance(stop, str):
        return (stop,) if stop else ()
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise ApiError.invalid_type("stop", "one of a string or array of strings", stop)
    return tuple(s for s in stop if s)


def _response_format(data: Mapping[str, Any]) -> tuple[Literal["text", "json_object", "json_schema"], Any]:
    fmt = data.get("response_format")
    if fmt is None:
        return "text", None
    if not isinstance(fmt, dict):
        raise ApiError.invalid_type("response_format", "an object", fmt)
    kind = fmt.get("type")
    if kind == "text" or kind == "json_object":
        return kind, None
    if kind != "json_schema":
        raise ApiError(
            400,
            f"Invalid value: {orjson.dumps(kind).decode()}. Supported values are: 'text', 'json_object', "
            "and 'json_schema'.",
            param="response_format.type",
            code="invalid_value",
        )
    spec = fmt.get("json_schema")
    if not isinstance(spec, dict):
        raise ApiError.missing("response_format.json_schema")
    schema = spec.get("schema", {})
    if not isinstance(schema, dict):
        raise ApiError.invalid_type("response_format.json_schema.schema", "an object", schema)
    return "json_schema", schema


def _tools(data: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    tools = data.get("tools")
    if tools is None:
        return {}
    if not isinstance(tools, list):
        raise ApiError.invalid_type("tools", "an array", tools)
    found: dict[str, Mapping[str, Any]] = {}
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict):
            raise ApiError.missing(f"tools[{i}].function")
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise ApiError.missing(f"tools[{i}].function.name")
        parameters = function.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise ApiError.invalid_type(f"tools[{i}].function.parameters", "an object", parameters)
        found[name] = parameters
    return found


def _chosen_tool(data: Mapping[str, Any], tools: Mapping[str, Mapping[str, Any]]) -> ToolSpec | None:
    choice = data.get("tool_choice")
    if choice is None or choice in ("auto", "required", "none"):
        if choice == "required" and not tools:
            raise ApiError(
                400,
                "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
                param="tool_choice",
            )
        if choice == "none" or not tools:
            return None
        name = next(iter(tools))
        return ToolSpec(name, tools[name])
    function = choice.get("function") if isinstance(choice, dict) else None
    named = function.get("name") if isinstance(function, dict) else None
    if not isinstance(named, str):
        raise ApiError.invalid_type("tool_choice", "one of a string or an object naming a function", choice)
    if named not in tools:
        raise ApiError(400, f"Tool choice '{named}' not found in 'tools' parameter.", param="tool_choice")
    return ToolSpec(named, tools[named])


def parse_chat(body: bytes, default_max_tokens: int) -> ChatRequest:
    """Validate a chat completions body; raises :class:`ApiError` (400) on what OpenAI would reject."""
    data = parse_json(body)
    model = _model(data)
    messages = data.get("messages")
    if messages is None:
        raise ApiError.missing("messages")
    if not isinstance(messages, list):
        raise ApiError.invalid_type("messages", "an array of objects", messages)
    if not messages:
        raise ApiError(
            400,
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty "
            "array instead.",
            param="messages",
            code="empty_array",
        )
    tools = _tools(data)
    tool = _chosen_tool(data, tools)
    prompt, last = render_prompt(messages, data["tools"] if tools else None)
    tool_result = None
    if last.role == "tool":
        # After a tool has answered, an assistant talks about the result instead of calling again.
        tool, tool_result = None, last.text
    limit = _int_param(data, "max_completion_tokens", 1)
    if limit is None:
        limit = _int_param(data, "max_tokens", 1)
    stream = data.get("stream") or False
    if not isinstance(stream, bool):
        raise ApiError.invalid_type("stream", "a boolean", stream)
    options = data.get("stream_options")
    if options is not None and not stream:
        raise ApiError(
            400,
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
        )
    if options is not None and not isinstance(options, dict):
        raise ApiError.invalid_type("stream_options", "an object", options)
    seed = data.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ApiError.invalid_type("seed", "an integer", seed)
    response_format, schema = _response_format(data)
    return ChatRequest(
        model=model,
        prompt=prompt,
        prompt_tokens=tokenize(prompt),
        n=_int_param(data, "n", 1, _MAX_N) or 1,
        max_tokens=limit if limit is not None else default_max_tokens,
        max_tokens_explicit=limit is not None,
        stop=_stop(data),
        seed=seed,
        stream=stream,
        include_usage=bool(options and options.get("include_usage")),
        response_format=response_format,
        schema=schema,
        tool=tool,
        tool_result=tool_result,
    )


def check_context(prompt_tokens: int, request: ChatRequest | None, context_window: int) -> None:
    """Reject a prompt (plus an explicit completion cap) longer than the context, as vLLM does."""
    if prompt_tokens > context_window:
        raise ApiError(
            400,
            f"This model's maximum context length is {context_window} tokens. However, your messages "
            f"resulted in {prompt_tokens} tokens. Please reduce the length of the messages.",
            param="messages",
            code="context_length_exceeded",
        )
    if request is not None and request.max_tokens_explicit:
        total = prompt_tokens + request.max_tokens
        if total > context_window:
            raise ApiError(
                400,
                f"This model's maximum context length is {context_window} tokens. However, you requested "
                f"{total} tokens ({prompt_tokens} in the messages, {request.max_tokens} in the completion). "
                "Please reduce the length of the messages or completion.",
                param="messages",
                code="context_length_exceeded",
            )


def _is_token_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _embedding_inputs(raw: object) -> tuple[tuple[str, ...], tuple[int, ...]]:
    def bad() -> ApiError:
        return ApiError(
            400,
            "'input' must be a non-empty string, an array of non-empty strings, an array of token ids, "
            "or an array of arrays of token ids.",
            param="input",
        )

    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise bad()
    if all(_is_token_id(t) for t in raw):
        raw = [raw]
    texts: list[str] = []
    counts: list[int] = []
    for item in raw:
        if isinstance(item, str) and item:
            texts.append(item)
            counts.append(max(len(tokenize(item)), 1))
        elif (
            isinstance(item, list)
            and item
            and all(isinstance(t, int) and not isinstance(t, bool) for t in item)
        ):
            texts.append(" ".join(map(str, item)))
            counts.append(len(item))
        else:
            raise bad()
    return tuple(texts), tuple(counts)


def parse_embeddings(body: bytes) -> EmbeddingsRequest:
    """Validate an embeddings body; raises :class:`ApiError` (400) on bad input."""
    data = parse_json(body)
    model = _model(data)
    if "input" not in data:
        raise ApiError.missing("input")
    inputs, counts = _embedding_inputs(data["input"])
    encoding = data.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise ApiError(
            400,
            f"Invalid value: {orjson.dumps(encoding).decode()}. Supported values are: 'float' and 'base64'.",
            param="encoding_format",
            code="invalid_value",
        )
    return EmbeddingsRequest(
        model=model,
        inputs=inputs,
        token_counts=counts,
        base64=encoding == "base64",
        dimensions=_int_param(data, "dimensions", 1, 65536),
    )
