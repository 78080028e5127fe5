"""Reply translation for the Anthropic front door: OpenAI replies (complete, or chunk by chunk) back into
Anthropic messages and events, and gateway errors into Anthropic error bodies. The requests came in
through :mod:`interlock.providers.anthropic_inbound`.

Where the two APIs differ, the choice is made once, here:

- OpenAI streams report usage only in their last chunk, so ``message_start`` carries
  ``input_tokens: 0`` and the real counts arrive in ``message_delta``, which the SDK applies.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from interlock.core.context import Chunk, Usage
from interlock.core.errors import GatewayError, UpstreamBadResponse
from interlock.providers._anthropic_common import is_int, json_object

__all__ = [
    "AnthropicEvent",
    "OpenAIStreamToAnthropic",
    "anthropic_error_body",
    "anthropic_error_type",
    "openai_response_to_anthropic",
]

AnthropicEvent = tuple[str, dict[str, Any]]
"""One server-sent event for an Anthropic client: its name, and the data to send as JSON."""

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def openai_response_to_anthropic(body: dict[str, Any], *, model: str) -> dict[str, Any]:
    """Translate an OpenAI ``chat.completion`` into an Anthropic ``message`` for the model alias the
    client asked for."""
    choices = body.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else None
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(choice, dict) or not isinstance(message, dict):
        raise UpstreamBadResponse("the upstream answered without a message to translate")
    content: list[dict[str, Any]] = []
    text = _reply_text(message.get("content"))
    refusal = message.get("refusal")
    if text:
        content.append({"type": "text", "text": text})
    elif isinstance(refusal, str) and refusal:
        content.append({"type": "text", "text": refusal})
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else []:
        content.append(_tool_use_block(call))
    stop_reason = _stop_reason(choice.get("finish_reason"))
    if not text and isinstance(refusal, str) and refusal:
        stop_reason = "refusal"
    return {
        "id": _anthropic_id(body.get("id")),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": _anthropic_usage(Usage.from_openai(body.get("usage"))),
    }


def _reply_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # a few backends answer with content parts
        return "".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _tool_use_block(call: Any) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(function, dict) or not isinstance(name, str):
        raise UpstreamBadResponse("the upstream answered with a malformed tool call")
    arguments = function.get("arguments")
    parsed = json_object(arguments) if isinstance(arguments, str) and arguments else {}
    if parsed is None:
        raise UpstreamBadResponse(
            f"the model called tool '{name[:64]}' with arguments that are not a JSON object"
        )
    call_id = call.get("id")
    if not isinstance(call_id, str) or not call_id:
        call_id = _new_tool_id()
    return {"type": "tool_use", "id": call_id, "name": name, "input": parsed}


def _stop_reason(finish_reason: Any) -> str:
    return _STOP_REASONS.get(finish_reason, "end_turn") if isinstance(finish_reason, str) else "end_turn"


def _anthropic_id(completion_id: Any) -> str:
    """``chatcmpl-msg_…`` → ``msg_…`` (the Anthropic adapter's ids round-trip); ``x`` → ``msg_x``."""
    if not isinstance(completion_id, str) or not completion_id:
        return f"msg_{uuid.uuid4().hex}"
    if completion_id.startswith("chatcmpl-msg_"):
        return completion_id.removeprefix("chatcmpl-")
    return completion_id if completion_id.startswith("msg_") else f"msg_{completion_id}"


def _anthropic_usage(usage: Usage | None) -> dict[str, int]:
    """OpenAI counts cached prompt tokens inside ``prompt_tokens``; Anthropic counts them apart."""
    usage = usage or Usage()
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    return {
        "input_tokens": usage.prompt_tokens - cached,
        "output_tokens": usage.completion_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }


def _new_tool_id() -> str:
    return f"toolu_{uuid.uuid4().hex[:24]}"


class OpenAIStreamToAnthropic:
    """Turns OpenAI chunks, fed one at a time, into the Anthropic Messages event sequence:
    ``message_start``, then per block ``content_block_start`` / ``content_block_delta`` /
    ``content_block_stop``, then ``message_delta`` and ``message_stop``.

    Text and tool-call fragments are passed on as they arrive; only the finish reason is held until
    the usage is known, because ``message_delta`` must carry both.
    """

    def __init__(self, model: str) -> None:
        self._model = model
        self._started = False
        self._done = False
        self._open: int | None = None  # index of the block now open
        self._open_kind: str | None = None
        self._next_index = 0
        self._tool_blocks: dict[int, int] = {}  # OpenAI tool_calls index → block index
        self._stop_reason: str | None = None
        self._usage: Usage | None = None
        self._refused = False

    def feed(self, chunk: Chunk) -> list[AnthropicEvent]:
        """Take one OpenAI chunk and return the Anthropic events it produces."""
        if self._done or not isinstance(chunk, dict):
            return []
        events: list[AnthropicEvent] = []
        usage = Usage.from_openai(chunk.get("usage"))
        if usage is not None:
            self._usage = usage
        if not self._started:
            events.append(self._message_start(chunk.get("id")))
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else []:
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                events.extend(self._on_choice(choice))
        if self._stop_reason is not None and self._usage is not None:
            events.extend(self._finish())
        return events

    def close(self) -> list[AnthropicEvent]:
        """The closing events, for when the OpenAI stream has ended; empty once already closed."""
        if self._done:
            return []
        events = [] if self._started else [self._message_start(None)]
        return events + self._finish()

    def _message_start(self, completion_id: Any) -> AnthropicEvent:
        self._started = True
        message: dict[str, Any] = {
            "id": _anthropic_id(completion_id),
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": _anthropic_usage(self._usage),
        }
        return "message_start", {"type": "message_start", "message": message}

    def _on_choice(self, choice: dict[str, Any]) -> list[AnthropicEvent]:
        events: list[AnthropicEvent] = []
        delta = choice.get("delta")
        if isinstance(delta, dict):
            for key in ("content", "refusal"):
                text = delta.get(key)
                if isinstance(text, str) and text:
                    events.extend(self._on_text(text))
            self._refused = self._refused or bool(delta.get("refusal"))
            calls = delta.get("tool_calls")
            for position, call in enumerate(calls if isinstance(calls, list) else []):
                if isinstance(call, dict):
                    events.extend(self._on_tool_call(call, position))
        finish = choice.get("finish_reason")
        if isinstance(finish, str) and self._stop_reason is None:
            self._stop_reason = _stop_reason(finish)
            events.extend(self._close_block())
        return events

    def _on_text(self, text: str) -> list[AnthropicEvent]:
        events = [] if self._open_kind == "text" else self._open_block({"type": "text", "text": ""})
        delta = {"type": "text_delta", "text": text}
        return [*events, _event("content_block_delta", index=self._open, delta=delta)]

    def _on_tool_call(self, call: dict[str, Any], position: int) -> list[AnthropicEvent]:
        raw_index = call.get("index")
        index = raw_index if is_int(raw_index) else position
        function = call.get("function")
        if not isinstance(function, dict):
            function = {}
        events: list[AnthropicEvent] = []
        if index not in self._tool_blocks:
            call_id, name = call.get("id"), function.get("name")
            block = {
                "type": "tool_use",
                "id": call_id if isinstance(call_id, str) and call_id else _new_tool_id(),
                "name": name if isinstance(name, str) else "",
                "input": {},
            }
            events = self._open_block(block)
            self._tool_blocks[index] = self._next_index - 1
        arguments = function.get("arguments")
        if isinstance(arguments, dict):  # a few backends send the arguments decoded
            arguments = orjson.dumps(arguments).decode()
        if isinstance(arguments, str) and arguments:
            # OpenAI sends one call after another; should a backend interleave two, the late
            # fragment still goes to its own block, which the SDK's accumulator accepts.
            delta = {"type": "input_json_delta", "partial_json": arguments}
            events.append(_event("content_block_delta", index=self._tool_blocks[index], delta=delta))
        return events

    def _open_block(self, block: dict[str, Any]) -> list[AnthropicEvent]:
        events = self._close_block()
        self._open, self._open_kind = self._next_index, block["type"]
        self._next_index += 1
        return [*events, _event("content_block_start", index=self._open, content_block=block)]

    def _close_block(self) -> list[AnthropicEvent]:
        if self._open is None:
            return []
        index, self._open, self._open_kind = self._open, None, None
        return [_event("content_block_stop", index=index)]

    def _finish(self) -> list[AnthropicEvent]:
        self._done = True
        usage = _anthropic_usage(self._usage)
        stop_reason = "refusal" if self._refused else self._stop_reason or "end_turn"
        delta = {"stop_reason": stop_reason, "stop_sequence": None}
        return [
            *self._close_block(),
            _event("message_delta", delta=delta, usage=usage),
            _event("message_stop"),
        ]


def _event(name: str, **fields: Any) -> AnthropicEvent:
    return name, {"type": name, **fields}


def anthropic_error_body(status: int, error_type: str | None, message: str) -> dict[str, Any]:
    """The body of an Anthropic error response (or ``error`` event); ``error_type`` defaults to the
    one Anthropic uses for ``status``."""
    kind = error_type or _error_type_for_status(status)
    return {"type": "error", "error": {"type": kind, "message": message}}


def anthropic_error_type(err: GatewayError) -> str:
    """The Anthropic error ``type`` for a gateway error, chosen by its HTTP status."""
    return _error_type_for_status(err.status)


def _error_type_for_status(status: int) -> str:
    if status in _ERROR_TYPES:
        return _ERROR_TYPES[status]
    return "invalid_request_error" if 400 <= status < 500 else "api_error"
