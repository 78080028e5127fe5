"""OpenAI's wire shapes: error bodies, ``chat.completion``, ``chat.completion.chunk``, embeddings, models.

Stream chunks are the hot path of a benchmark against the simulator, so :class:`ChunkEncoder` renders
the parts of a chunk that never change within a response once, as bytes, and splices each delta in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = [
    "ApiError",
    "ChunkEncoder",
    "DeltaCache",
    "ToolCallPlan",
    "chat_completion",
    "embeddings_list",
    "error_body",
    "model_card",
    "models_list",
    "usage",
]

_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


def _kind(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a decimal", str: "a string", list: "an array"}
    return "null" if value is None else names.get(type(value), "an object")


class ApiError(Exception):
    """An error answered to the client in OpenAI's shape; the message is safe to show."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        default_type, default_code = _ERROR_TYPES.get(status, ("server_error", None))
        self.status = status
        self.message = message
        self.param = param
        self.code = code if code is not None else default_code
        self.type = type or default_type
        self.retry_after_s = retry_after_s

    @classmethod
    def invalid_type(cls, param: str, expected: str, value: object) -> ApiError:
        """OpenAI's 400 for a parameter of the wrong JSON type."""
        return cls(
            400,
            f"Invalid type for '{param}': expected {expected}, but got {_kind(value)} instead.",
            param=param,
            code="invalid_type",
        )

    @classmethod
    def missing(cls, param: str) -> ApiError:
        """OpenAI's 400 for a required parameter left out."""
        message = f"Missing required parameter: '{param}'."
        return cls(400, message, param=param, code="missing_required_parameter")

    def body(self) -> bytes:
        """The JSON body of the error response."""
        return error_body(self.message, type=self.type, param=self.param, code=self.code)

    def headers(self) -> list[tuple[bytes, bytes]]:
        """Extra response headers (``Retry-After`` when set)."""
        if self.retry_after_s is None:
            return []
        return [(b"retry-after", b"%d" % max(round(self.retry_after_s), 0))]


def error_body(message: str, *, type: str, param: str | None = None, code: str | None = None) -> bytes:
    """``{"error": {...}}`` exactly as OpenAI sends it."""
    return orjson.dumps({"error": {"message": message, "type": type, "param": param, "code": code}})


@dataclass(frozen=True, slots=True)
class ToolCallPlan:
    """The function call one choice answers with."""

    id: str
    name: str
    arguments: str


def usage(prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> dict[str, Any]:
    """The ``usage`` object of a chat completion."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def chat_completion(
    *,
    id: str,
    created: int,
    model: str,
    fingerprint: str,
    choices: Sequence[tuple[str | None, ToolCallPlan | None, str]],
    usage: Mapping[str, Any],
) -> dict[str, Any]:
    """A ``chat.completion`` object; each choice is (content, tool call, finish reason)."""
    rendered = []
    for index, (content, tool_call, finish_reason) in enumerate(choices):
        message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
        if tool_call is not None:
            message["tool_calls"] = [
                {
                    "id": tool_call.id,
                    "type": "function",
                    "function": {"name": tool_call.name, "arguments": tool_call.arguments},
                }
            ]
        rendered.append(
            {"index": index, "message": message, "logprobs": None, "finish_reason": finish_reason}
        )
    return {
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": rendered,
        "usage": usage,
        "system_fingerprint": fingerprint,
    }


class DeltaCache:
    """Encoded ``delta`` objects of stream pieces, shared by every stream of one simulator.

    Answers are drawn from a small vocabulary, so nearly every piece has been encoded before: a dict
    hit replaces a JSON encoding per token. The cache stops growing at ``limit`` entries, so pieces
    of arbitrary JSON (tool arguments, structured output) cannot make it grow without bound.
    """

    __slots__ = ("_arguments", "_content", "limit")

    def __init__(self, limit: int = 8192) -> None:
        self.limit = limit
        self._content: dict[str, bytes] = {}
        self._arguments: dict[str, bytes] = {}

    def content(self, piece: str) -> bytes:
        """``{"content": piece}``."""
        delta = self._content.get(piece)
        if delta is None:
            delta = b'{"content":%s}' % orjson.dumps(piece)
            if len(self._content) < self.limit:
                self._content[piece] = delta
        return delta

    def arguments(self, piece: str) -> bytes:
        """A tool call delta carrying ``piece`` of its JSON arguments."""
        delta = self._arguments.get(piece)
        if delta is None:
            delta = b'{"tool_calls":[{"index":0,"function":{"arguments":%s}}]}' % orjson.dumps(piece)
            if len(self._arguments) < self.limit:
                self._arguments[piece] = delta
        return delta


class ChunkEncoder:
    """Renders the server-sent events of one streamed chat completion.

    Everything around a chunk's delta is the same for every chunk of a choice, so it is rendered once
    and each chunk is three byte strings joined. When the client asked for
    ``stream_options.include_usage``, every chunk carries ``"usage": null`` and one last chunk has
    empty ``choices`` and the usage, as OpenAI does.
    """

    __slots__ = ("_deltas", "_head", "_open", "_tail")

    def __init__(
        self,
        *,
        id: str,
        created: int,
        model: str,
        fingerprint: str,
        include_usage: bool,
        deltas: DeltaCache,
    ) -> None:
        head = {"id": id, "object": "chat.completion.chunk", "created": created, "model": model}
        self._head = (
            b"data: "
            + orjson.dumps(head)[:-1]
            + b',"system_fingerprint":'
            + orjson.dumps(fingerprint)
            + b',"choices":'
        )
        self._tail = (b',"usage":null' if include_usage else b"") + b"}\n\n"
        # What comes after the delta of a chunk that does not finish its choice.
        self._open = b',"logprobs":null,"finish_reason":null}]' + self._tail
        self._deltas = deltas

    def _start(self, index: int) -> bytes:
        return self._head + b'[{"index":%d,"delta":' % index

    def _choice(self, index: int, delta: bytes, finish_reason: bytes = b"null") -> bytes:
        return (
            self._start(index) + delta + b',"logprobs":null,"finish_reason":%s}]' % finish_reason + self._tail
        )

    def role(self, index: int, tool_call: ToolCallPlan | None = None) -> bytes:
        """The first chunk of a choice: the role, and for a tool call the call's id, type and name."""
        if tool_call is None:
            return self._choice(index, b'{"role":"assistant","content":""}')
        call = {
            "index": 0,
            "id": tool_call.id,
            "type": "function",
            "function": {"name": tool_call.name, "arguments": ""},
        }
        delta = {"role": "assistant", "content": None, "tool_calls": [call], "refusal": None}
        return self._choice(index, orjson.dumps(delta))

    def pieces(self, index: int, pieces: Sequence[str], *, arguments: bool = False) -> list[bytes]:
        """One chunk per piece: text, or fragments of a tool call's JSON ``arguments``."""
        start, end = self._start(index), self._open
        encode = self._deltas.arguments if arguments else self._deltas.content
        return [start + encode(piece) + end for piece in pieces]

    def finish(self, index: int, finish_reason: str) -> bytes:
        """The last chunk of a choice: an empty delta and the finish reason."""
        return self._choice(index, b"{}", b'"%s"' % finish_reason.encode())

    def usage(self, usage: Mapping[str, Any]) -> bytes:
        """The final usage chunk (only sent with ``include_usage``)."""
        return self._head + b'[],"usage":' + orjson.dumps(usage) + b"}\n\n"

    @staticmethod
    def done() -> bytes:
        """The end-of-stream marker."""
        return b"data: [DONE]\n\n"


def embeddings_list(model: str, data: Sequence[list[float] | str], prompt_tokens: int) -> dict[str, Any]:
    """An embeddings ``list`` response; each item is a float list or a base64 string."""
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": item} for i, item in enumerate(data)],
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def model_card(model_id: str, created: int, context_window: int) -> dict[str, Any]:
    """One ``model`` object (with vLLM's ``max_model_len`` as an extra)."""
    return {
        "id": model_id,
        "object": "model",
        "created": created,
        "owned_by": "interlock-sim",
        "max_model_len": context_window,
    }


def models_list(model_ids: Sequence[str], created: int, context_window: int) -> dict[str, Any]:
    """The ``GET /v1/models`` list."""
    return {"object": "list", "data": [model_card(m, created, context_window) for m in model_ids]}
