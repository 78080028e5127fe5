"""Adapter for the Anthropic Messages API (``POST /v1/messages``).

Requests arrive OpenAI-shaped and leave as Anthropic messages; answers, complete or streamed, come back
OpenAI-shaped. The translation itself lives in :mod:`interlock.providers.anthropic_outbound` (requests)
and :mod:`interlock.providers.anthropic_outbound_reply` (answers); this module only speaks HTTP. Error
statuses go through ``error_from_status``, which reads Anthropic's
``{"type": "error", "error": {"message": …}}`` bodies, so a 529 "overloaded" is a retryable
``UpstreamError`` like any other 5xx.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

import orjson

from interlock.core.context import Chunks
from interlock.core.errors import InvalidRequest, UpstreamBadResponse
from interlock.providers.anthropic_outbound import openai_request_to_anthropic
from interlock.providers.anthropic_outbound_reply import (
    AnthropicStreamTranslator,
    anthropic_response_to_openai,
)
from interlock.providers.base import UpstreamReply
from interlock.providers.http import Connector, HttpClient, Timeouts
from interlock.providers.sse import SseEvent, chunk_batches

__all__ = ["AnthropicProvider"]

_MAX_MODEL_PAGES = 20


class AnthropicProvider:
    """Speaks the Anthropic Messages API to one base URL such as ``https://api.anthropic.com``
    (a trailing ``/v1`` is accepted and not doubled; a query is kept on every request).
    ``transport`` replaces the network."""

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
        default_max_tokens: int = 4096,
        api_version: str = "2023-06-01",
    ) -> None:
        self.name = name
        self.default_max_tokens = default_max_tokens
        path, query_mark, query = base_url.partition("?")
        base = path.rstrip("/").removesuffix("/v1") + query_mark + query
        all_headers = {"anthropic-version": api_version, **(headers or {})}
        if api_key:
            all_headers["x-api-key"] = api_key
        self._http = HttpClient(name, base, all_headers, timeouts or Timeouts(), proxy, transport)

    def _request(self, body: dict[str, Any], *, stream: bool) -> bytes:
        request = openai_request_to_anthropic(body, default_max_tokens=self.default_max_tokens)
        request.pop("stream", None)
        if stream:
            request["stream"] = True
        return orjson.dumps(request)

    async def chat(self, body: dict[str, Any], headers: Mapping[str, str] | None = None) -> UpstreamReply:
        payload = self._request(body, stream=False)
        parsed, _ = await self._http.request_json("POST", "/v1/messages", payload, headers)
        if not isinstance(parsed, dict):
            raise UpstreamBadResponse(f"upstream '{self.name}' answered with something other than a message")
        return UpstreamReply(anthropic_response_to_openai(parsed))

    def chat_stream(
        self, body: dict[str, Any], headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[Chunks]:
        payload = self._request(body, stream=True)
        translator = AnthropicStreamTranslator(self.name)
        batches = self._http.event_batches("/v1/messages", payload, headers)

        def convert(event: SseEvent) -> tuple[Chunks, bool]:
            chunks = translator.feed(event.event, self._parse_event(event.data))
            return chunks, translator.finished

        incomplete = f"upstream '{self.name}' ended the stream before message_stop"
        return chunk_batches(batches, convert, incomplete)

    def _parse_event(self, data: bytes) -> dict[str, Any]:
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise UpstreamBadResponse(f"upstream '{self.name}' sent an invalid stream event") from exc
        if not isinstance(parsed, dict):
            raise UpstreamBadResponse(f"upstream '{self.name}' sent an invalid stream event")
        return parsed

    async def embeddings(
        self, body: dict[str, Any], headers: Mapping[str, str] | None = None
    ) -> UpstreamReply:
        raise InvalidRequest("embeddings are not available from Anthropic deployments")

    async def list_models(self) -> list[str]:
        models: list[str] = []
        path = "/v1/models?limit=1000"
        for _ in range(_MAX_MODEL_PAGES):
            parsed, _ = await self._http.request_json("GET", path)
            data = parsed.get("data") if isinstance(parsed, dict) else None
            if not isinstance(data, list):
                raise UpstreamBadResponse(f"upstream '{self.name}' answered /v1/models without data")
            models.extend(str(m["id"]) for m in data if isinstance(m, dict) and "id" in m)
            last_id = parsed.get("last_id")
            if parsed.get("has_more") is not True or not isinstance(last_id, str):
                break
            path = f"/v1/models?limit=1000&after_id={quote(last_id, safe='')}"
        return models

    async def aclose(self) -> None:
        await self._http.aclose()
