"""The small interface every upstream protocol adapter implements.

Requests and replies inside the gateway are OpenAI-shaped dicts; an adapter for another protocol
translates both ways at its boundary, and converts every foreign error into an
:class:`interlock.core.errors.GatewayError` there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from interlock.core.context import Chunks

__all__ = ["Provider", "UpstreamReply"]


@dataclass(frozen=True, slots=True)
class UpstreamReply:
    """A complete upstream answer: the parsed OpenAI-shaped body, and the raw bytes when they are
    already that body (so the front door can forward them without serializing again)."""

    body: dict[str, Any]
    raw: bytes | None = None


class Provider(Protocol):
    """An upstream endpoint speaking one protocol.

    ``body`` is the caller's OpenAI-shaped request with ``model`` already set to the upstream name.
    Stream iterators yield batches of OpenAI ``chat.completion.chunk`` dicts (the chunks that one
    read from the upstream brought; never an empty batch), the last one carrying ``usage`` when the
    upstream reports it; they raise a ``GatewayError`` if the upstream fails or the stream
    ends early, and release the upstream connection when closed or cancelled. ``headers`` are added
    to that one upstream request (the trace context: ``traceparent``, ``tracestate``).
    """

    name: str

    async def chat(self, body: dict[str, Any], headers: Mapping[str, str] | None = None) -> UpstreamReply: ...

    def chat_stream(
        self, body: dict[str, Any], headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[Chunks]: ...

    async def embeddings(
        self, body: dict[str, Any], headers: Mapping[str, str] | None = None
    ) -> UpstreamReply: ...

    async def list_models(self) -> list[str]: ...

    async def aclose(self) -> None: ...
