"""Reply translation for the Anthropic adapter: Anthropic messages and stream events back into OpenAI
shapes. The requests went out through :mod:`interlock.providers.anthropic_outbound`.

Where the two APIs differ, the choice is made once, here:

- Thinking blocks come back as ``reasoning_content`` (the field vLLM, SGLang and DeepSeek use).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from interlock.core.context import Chunk
from interlock.core.errors import UpstreamBadResponse, UpstreamStreamBroken
from interlock.providers._anthropic_common import is_int

__all__ = ["AnthropicStreamTranslator", "anthropic_response_to_openai"]

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def anthropic_response_to_openai(message: dict[str, Any]) -> dict[str, Any]:
    """Translate an Anthropic ``message`` object into an OpenAI ``chat.completion``."""
    content = message.get("content")
    if message.get("type") != "message" or not isinstance(content, list):
        raise UpstreamBadResponse("the Anthropic upstream answered with something other than a message")
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "thinking" and isinstance(block.get("thinking"), str):
            reasoning.append(block["thinking"])
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            function = {"name": block.get("name"), "arguments": arguments}
            calls.append({"id": block.get("id"), "type": "function", "function": function})
    # Text is joined without separators: citations split one sentence into several blocks.
    reply: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,
    }
    if calls:
        reply["tool_calls"] = calls
    if reasoning:
        reply["reasoning_content"] = "".join(reasoning)
    choice = {"index": 0, "message": reply, "finish_reason": _finish_reason(message.get("stop_reason"))}
    return {
        "id": _openai_id(message.get("id")),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": message.get("model"),
        "choices": [dict(choice, logprobs=None)],
        "usage": _openai_usage(message.get("usage")),
    }


def _openai_id(message_id: Any) -> str:
    """``msg_…`` → ``chatcmpl-msg_…``: the upstream id stays readable in logs and reversible."""
    if not isinstance(message_id, str) or not message_id:
        return f"chatcmpl-{time.time_ns():x}"
    return message_id if message_id.startswith("chatcmpl-") else f"chatcmpl-{message_id}"


def _openai_usage(usage: Any) -> dict[str, Any]:
    """Anthropic counts cached prompt tokens apart from ``input_tokens``; OpenAI counts them inside."""
    usage = usage if isinstance(usage, dict) else {}
    read = _count(usage.get("cache_read_input_tokens"))
    prompt = _count(usage.get("input_tokens")) + read + _count(usage.get("cache_creation_input_tokens"))
    completion = _count(usage.get("output_tokens"))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": read},
    }


def _finish_reason(stop_reason: Any) -> str:
    return _FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


class AnthropicStreamTranslator:
    """Turns Anthropic Messages stream events, fed one at a time, into OpenAI chunks.

    It emits a role chunk on ``message_start``, content and tool-call deltas as they arrive, a
    ``finish_reason`` chunk, and on ``message_stop`` a usage chunk with ``choices: []``, after which
    :attr:`finished` is true. An ``error`` event raises ``UpstreamStreamBroken``.
    """

    def __init__(self, provider: str = "anthropic") -> None:
        self._provider = provider
        self._id = _openai_id(None)
        self._model: Any = None
        self._created = int(time.time())
        self._started = False
        self._finished = False
        self._finish_sent = False
        self._usage: dict[str, Any] = {}
        self._tool_index: dict[int, int] = {}  # Anthropic block index → OpenAI tool_calls index

    @property
    def finished(self) -> bool:
        """True once ``message_stop`` has been seen: the stream is complete."""
        return self._finished

    def feed(self, event_name: str | None, data: dict[str, Any]) -> list[Chunk]:
        """Take one event (its SSE name and parsed data) and return the chunks it produces."""
        kind = data.get("type") if isinstance(data.get("type"), str) else event_name
        if kind == "error":
            raise UpstreamStreamBroken(f"upstream '{self._provider}' failed mid-stream: {_error_text(data)}")
        if self._finished or kind == "ping":
            return []
        if not self._started:
            if kind != "message_start":
                raise UpstreamBadResponse(f"upstream '{self._provider}' sent '{kind}' before message_start")
            return self._on_message_start(data)
        if kind == "content_block_start":
            return self._on_block_start(data)
        if kind == "content_block_delta":
            return self._on_block_delta(data)
        if kind == "message_delta":
            return self._on_message_delta(data)
        if kind == "message_stop":
            return self._on_message_stop()
        return []  # content_block_stop, and event types added after this was written

    def _on_message_start(self, data: dict[str, Any]) -> list[Chunk]:
        message = data.get("message")
        if not isinstance(message, dict):
            message = {}
        self._started = True
        self._id = _openai_id(message.get("id"))
        self._model = message.get("model")
        self._merge_usage(message.get("usage"))
        return [self._chunk({"role": "assistant", "content": ""})]

    def _on_block_start(self, data: dict[str, Any]) -> list[Chunk]:
        block = data.get("content_block")
        index = data.get("index")
        if not isinstance(block, dict) or not isinstance(index, int):
            return []
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str) and block["text"]:
            return [self._chunk({"content": block["text"]})]
        if kind != "tool_use":
            return []
        position = len(self._tool_index)
        self._tool_index[index] = position
        # Streams start tool inputs as {} and send the JSON in input_json_delta events.
        arguments = orjson.dumps(block["input"]).decode() if block.get("input") else ""
        call = {
            "index": position,
            "id": block.get("id"),
            "type": "function",
            "function": {"name": block.get("name"), "arguments": arguments},
        }
        return [self._chunk({"tool_calls": [call]})]

    def _on_block_delta(self, data: dict[str, Any]) -> list[Chunk]:
        delta = data.get("delta")
        index = data.get("index")
        if not isinstance(delta, dict) or not isinstance(index, int):
            return []
        kind = delta.get("type")
        if kind == "text_delta" and isinstance(delta.get("text"), str):
            return [self._chunk({"content": delta["text"]})]
        if kind == "thinking_delta" and isinstance(delta.get("thinking"), str):
            return [self._chunk({"reasoning_content": delta["thinking"]})]
        fragment = delta.get("partial_json")
        if (
            kind == "input_json_delta"
            and index in self._tool_index
            and isinstance(fragment, str)
            and fragment
        ):
            call = {"index": self._tool_index[index], "function": {"arguments": fragment}}
            return [self._chunk({"tool_calls": [call]})]
        return []  # signature_delta, citations_delta: no OpenAI equivalent

    def _on_message_delta(self, data: dict[str, Any]) -> list[Chunk]:
        self._merge_usage(data.get("usage"))
        delta = data.get("delta")
        stop_reason = delta.get("stop_reason") if isinstance(delta, dict) else None
        if stop_reason is None or self._finish_sent:
            return []
        self._finish_sent = True
        return [self._chunk({}, _finish_reason(stop_reason))]

    def _on_message_stop(self) -> list[Chunk]:
        self._finished = True
        chunks = [] if self._finish_sent else [self._chunk({}, "stop")]
        final = self._chunk({})
        final["choices"] = []
        final["usage"] = _openai_usage(self._usage)
        return [*chunks, final]

    def _merge_usage(self, usage: Any) -> None:
        # message_delta counts are cumulative: each one present replaces the earlier value.
        if isinstance(usage, dict):
            self._usage.update({k: v for k, v in usage.items() if is_int(v)})

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> Chunk:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
        }


def _error_text(data: dict[str, Any]) -> str:
    error = data.get("error")
    if not isinstance(error, dict):
        return "unknown error"
    text = f"{error.get('type', 'error')}: {error.get('message', '')}"
    return text[:300]


def _count(value: Any) -> int:
    return value if is_int(value) and value > 0 else 0
