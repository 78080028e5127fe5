"""The Anthropic dialect: ``POST /v1/messages`` served by any backend.

The Messages request is translated into the gateway's OpenAI shape on the way in, and the reply
(complete or streamed) back into a ``message`` object or Anthropic's event sequence on the way out.
"""

from __future__ import annotations

from typing import Any

import orjson

from interlock.core.context import Chunks, Front, Operation, Reply, RequestContext
from interlock.core.errors import GatewayError
from interlock.providers.anthropic_inbound import anthropic_request_to_openai
from interlock.providers.anthropic_inbound_reply import OpenAIStreamToAnthropic, openai_response_to_anthropic
from interlock.server.caller_input import check_model_name
from interlock.server.errors import error_body

__all__ = ["AnthropicMessagesFront", "AnthropicStreamRenderer"]


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class AnthropicStreamRenderer:
    """Chunk batches as Anthropic's event sequence, ending with ``message_stop``."""

    __slots__ = ("_translator",)

    def __init__(self, model: str) -> None:
        self._translator = OpenAIStreamToAnthropic(model)

    def batch(self, chunks: Chunks) -> bytes:
        feed = self._translator.feed
        return b"".join([_event(name, data) for chunk in chunks for name, data in feed(chunk)])

    def close(self) -> bytes:
        return b"".join([_event(name, data) for name, data in self._translator.close()])


class AnthropicMessagesFront:
    """``POST /v1/messages``."""

    front: Front = "anthropic"
    operation: Operation = "chat"

    def parse(self, body: dict[str, Any], request_id: str) -> RequestContext:
        translated = anthropic_request_to_openai(body)
        return RequestContext(
            request_id=request_id,
            operation=self.operation,
            model=check_model_name(str(translated["model"])),
            body=translated,
            stream=bool(translated.get("stream")),
            front=self.front,
            wants_usage=True,
        )

    def render(self, ctx: RequestContext, reply: Reply) -> bytes:
        assert reply.body is not None
        return orjson.dumps(openai_response_to_anthropic(reply.body, model=ctx.model))

    def stream_renderer(self, ctx: RequestContext) -> AnthropicStreamRenderer:
        return AnthropicStreamRenderer(ctx.model)

    def render_stream_error(self, err: GatewayError) -> bytes:
        return b"event: error\ndata: " + error_body(err, "anthropic") + b"\n\n"
