"""The OpenAI dialect: ``/v1/chat/completions`` and ``/v1/embeddings`` bodies in and out."""

from __future__ import annotations

from typing import Any

import orjson

from interlock.core.context import Chunks, Front, Operation, Reply, RequestContext
from interlock.core.errors import GatewayError, InvalidRequest
from interlock.server.caller_input import check_model_name
from interlock.server.errors import error_body

__all__ = ["OpenAIChatFront", "OpenAIEmbeddingsFront", "OpenAIStreamRenderer", "validate_chat_body"]


def _require_model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a non-empty string.", param="model")
    return check_model_name(model)


def _optional(body: dict[str, Any], name: str, kind: type | tuple[type, ...], what: str) -> None:
    value = body.get(name)
    if value is not None and (not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool)):
        raise InvalidRequest(f"'{name}' must be {what}.", param=name)


def _positive_int(body: dict[str, Any], name: str) -> None:
    value = body.get(name)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise InvalidRequest(f"'{name}' must be a positive integer.", param=name)


def validate_chat_body(body: dict[str, Any]) -> str:
    """Check the fields the gateway itself relies on; the upstream judges the rest."""
    model = _require_model(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' is required and must be a non-empty array.", param="messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise InvalidRequest(
                f"'messages[{index}]' must be an object with a string 'role'.", param=f"messages[{index}]"
            )
    _optional(body, "stream", bool, "a boolean")
    _optional(body, "stream_options", dict, "an object")
    _optional(body, "temperature", (int, float), "a number")
    _optional(body, "tools", list, "an array")
    _optional(body, "stop", (str, list), "a string or an array of strings")
    for name in ("n", "max_tokens", "max_completion_tokens"):
        _positive_int(body, name)
    return model


class OpenAIChatFront:
    """``POST /v1/chat/completions``."""

    front: Front = "openai"
    operation: Operation = "chat"

    def parse(self, body: dict[str, Any], request_id: str) -> RequestContext:
        model = validate_chat_body(body)
        options = body.get("stream_options")
        return RequestContext(
            request_id=request_id,
            operation=self.operation,
            model=model,
            body=body,
            stream=bool(body.get("stream")),
            wants_usage=isinstance(options, dict) and options.get("include_usage") is True,
        )

    def render(self, ctx: RequestContext, reply: Reply) -> bytes:
        if reply.raw is not None:
            return reply.raw
        return orjson.dumps(reply.body)

    def stream_renderer(self, ctx: RequestContext) -> OpenAIStreamRenderer:
        return OpenAIStreamRenderer(ctx.wants_usage)

    def render_stream_error(self, err: GatewayError) -> bytes:
        return b"data: " + error_body(err, "openai") + b"\n\n"


class OpenAIStreamRenderer:
    """Chunk batches as OpenAI server-sent events, ending with ``data: [DONE]``."""

    __slots__ = ("_wants_usage",)

    def __init__(self, wants_usage: bool) -> None:
        self._wants_usage = wants_usage

    def batch(self, chunks: Chunks) -> bytes:
        if not self._wants_usage:
            # usage was asked of the upstream for accounting, not by this client
            kept = []
            for chunk in chunks:
                if chunk.get("usage") and not chunk.get("choices"):
                    continue
                chunk.pop("usage", None)
                kept.append(chunk)
            chunks = kept
        return b"".join([b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks])

    def close(self) -> bytes:
        return b"data: [DONE]\n\n"


class OpenAIEmbeddingsFront(OpenAIChatFront):
    """``POST /v1/embeddings``."""

    operation: Operation = "embeddings"

    def parse(self, body: dict[str, Any], request_id: str) -> RequestContext:
        model = _require_model(body)
        value = body.get("input")
        if not _valid_embedding_input(value):
            raise InvalidRequest(
                "'input' is required: a non-empty string, array of strings, or array of token arrays.",
                param="input",
            )
        _optional(body, "encoding_format", str, "'float' or 'base64'")
        _positive_int(body, "dimensions")
        return RequestContext(
            request_id=request_id, operation=self.operation, model=model, body=body, stream=False
        )


def _valid_embedding_input(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value)
    if not isinstance(value, list) or not value:
        return False
    if all(isinstance(v, str) for v in value):
        return True
    if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return True
    return all(
        isinstance(v, list) and v and all(isinstance(t, int) and not isinstance(t, bool) for t in v)
        for v in value
    )
