"""Adapter for any OpenAI-compatible endpoint: OpenAI, vLLM, SGLang, Ollama, TGI, Groq, Together …

Bodies pass through untouched apart from ``model``; streams are parsed event by event and forwarded
as they arrive, never buffered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from interlock.core.context import Chunk, Chunks
from interlock.core.errors import UpstreamBadResponse, UpstreamStreamBroken
from interlock.providers.base import UpstreamReply
from interlock.providers.http import Connector, HttpClient, Timeouts
from interlock.providers.sse import SseEvent, chunk_batches

__all__ = ["OpenAIProvider"]


class OpenAIProvider:
    """Speaks the OpenAI HTTP API to one base URL (which includes the ``/v1`` part, and may carry a
    query every request keeps: Azure's ``?api-version=…``). ``transport`` replaces the network."""

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeouts: Timeouts | None = None,
        proxy: str | None = None,
        transport: Connector | None = None,
    ) -> None:
        self.name = name
        all_headers = dict(headers or {})
        if api_key:
            all_headers["Authorization"] = f"Bearer {api_key}"
        self._http = HttpClient(name, base_url, all_headers, timeouts or Timeouts(), proxy, transport)

    async def chat(self, body: dict[str, Any], headers: Mapping[str, str] | None = None) -> UpstreamReply:
        parsed, raw = await self._http.request_json("POST", "/chat/completions", orjson.dumps(body), headers)
        if not isinstance(parsed, dict) or not isinstance(parsed.get("choices"), list):
            raise UpstreamBadResponse(f"upstream '{self.name}' answered without choices")
        return UpstreamReply(parsed, raw)

    def chat_stream(
        self, body: dict[str, Any], headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[Chunks]:
        body = dict(body, stream=True)
        options = body.get("stream_options")
        body["stream_options"] = (
            dict(options, include_usage=True) if isinstance(options, dict) else {"include_usage": True}
        )
        batches = self._http.event_batches("/chat/completions", orjson.dumps(body), headers)
        incomplete = f"upstream '{self.name}' ended the stream before it was complete"
        return chunk_batches(batches, self._convert, incomplete)

    def _convert(self, event: SseEvent) -> tuple[Chunks, bool]:
        if event.data == b"[DONE]":
            return [], True
        return [self._parse_chunk(event.data)], False

    def _parse_chunk(self, data: bytes) -> Chunk:
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise UpstreamBadResponse(f"upstream '{self.name}' sent an invalid stream event") from exc
        if not isinstance(chunk, dict):
            raise UpstreamBadResponse(f"upstream '{self.name}' sent an invalid stream event")
        error = chunk.get("error")
        if error:
            message = error.get("message") if isinstance(error, dict) else str(error)
            raise UpstreamStreamBroken(f"upstream '{self.name}' failed mid-stream: {str(message)[:300]}")
        return chunk

    async def embeddings(
        self, body: dict[str, Any], headers: Mapping[str, str] | None = None
    ) -> UpstreamReply:
        parsed, raw = await self._http.request_json("POST", "/embeddings", orjson.dumps(body), headers)
        if not isinstance(parsed, dict) or not isinstance(parsed.get("data"), list):
            raise UpstreamBadResponse(f"upstream '{self.name}' answered embeddings without data")
        return UpstreamReply(parsed, raw)

    async def list_models(self) -> list[str]:
        parsed, _ = await self._http.request_json("GET", "/models")
        data = parsed.get("data") if isinstance(parsed, dict) else None
        if not isinstance(data, list):
            raise UpstreamBadResponse(f"upstream '{self.name}' answered /models without data")
        return [str(m.get("id")) for m in data if isinstance(m, dict) and "id" in m]

    async def aclose(self) -> None:
        await self._http.aclose()
