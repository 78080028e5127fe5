"""One request/response exchange on a model route, whatever the API dialect.

Reads the body under the size limit, lets the dialect (:class:`FrontDoor`) turn it into a
:class:`RequestContext`, runs the chain while watching for the client going away, and writes the
reply — complete, or as server-sent events chunk by chunk. Errors before the first byte become a
status and an error body; errors after it become an error event that ends the stream, so a broken
answer is never a silent, truncated 200.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Protocol

from interlock.errors import GatewayError, InvalidRequest
from interlock.gateway.chain import Next
from interlock.gateway.context import Chunks, Front, Reply, RequestContext
from interlock.server.asgi import (
    Receive,
    Scope,
    Send,
    cancel_on_disconnect,
    header,
    read_body,
    read_json_object,
    request_id_for,
    send_bytes,
)
from interlock.server.errors import error_body, error_headers, internal_error

__all__ = ["Exchange", "FrontDoor", "api_key_from", "attempts_header"]

_JSON = b"application/json"


class StreamRenderer(Protocol):
    """Writes one stream in a dialect: each batch of chunks as event bytes, then the closing events."""

    def batch(self, chunks: Chunks) -> bytes: ...

    def close(self) -> bytes: ...


class FrontDoor(Protocol):
    """An API dialect: how requests are read and replies written."""

    front: Front

    def parse(self, body: dict[str, Any], request_id: str) -> RequestContext: ...

    def render(self, ctx: RequestContext, reply: Reply) -> bytes: ...

    def stream_renderer(self, ctx: RequestContext) -> StreamRenderer: ...

    def render_stream_error(self, err: GatewayError) -> bytes: ...


def api_key_from(scope: Scope) -> str | None:
    """The caller's key from ``Authorization: Bearer`` or ``x-api-key``."""
    auth = header(scope, b"authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return header(scope, b"x-api-key")


class Exchange:
    """An ASGI app serving one model route through the chain."""

    def __init__(self, front: FrontDoor, chain: Next, max_body_bytes: int) -> None:
        self._front = front
        self._chain = chain
        self._limit = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = request_id_for(scope)
        try:
            raw = await read_body(scope, receive, self._limit)
            ctx = self._front.parse(read_json_object(raw), request_id)
        except GatewayError as err:
            await self._send_error(send, err, request_id, None)
            return
        except asyncio.CancelledError:
            return
        ctx.api_key = api_key_from(scope)
        ctx.headers = scope["headers"]
        ctx.traceparent = header(scope, b"traceparent")
        try:
            _routing_constraints(ctx, scope)
        except GatewayError as err:
            await self._send_error(send, err, request_id, None)
            return
        await cancel_on_disconnect(receive, lambda: self._serve(ctx, send))

    async def _serve(self, ctx: RequestContext, send: Send) -> None:
        try:
            reply = await self._chain(ctx)
        except GatewayError as err:
            await self._send_error(send, err, ctx.request_id, ctx)
            return
        except Exception as exc:
            await self._send_error(send, internal_error(exc, ctx.request_id), ctx.request_id, ctx)
            return
        if reply.stream is not None:
            await self._send_stream(send, ctx, reply.stream)
            return
        try:
            body = self._front.render(ctx, reply)
        except GatewayError as err:
            await self._send_error(send, err, ctx.request_id, ctx)
            return
        await send_bytes(send, 200, body, self._headers(ctx), _JSON)

    async def _send_stream(self, send: Send, ctx: RequestContext, chunks: AsyncIterator[Chunks]) -> None:
        renderer = self._front.stream_renderer(ctx)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                    (b"x-accel-buffering", b"no"),
                    *self._headers(ctx),
                ],
            }
        )
        try:
            async for batch in chunks:
                body = renderer.batch(batch)
                if body:
                    await send({"type": "http.response.body", "body": body, "more_body": True})
            # the closing events and the end of the response go out in one write
            closing = renderer.close()
        except GatewayError as err:
            await send({"type": "http.response.body", "body": self._front.render_stream_error(err)})
            return
        except OSError:
            return  # the client is gone: there is no one left to tell
        except Exception as exc:
            failure = internal_error(exc, ctx.request_id)
            await send({"type": "http.response.body", "body": self._front.render_stream_error(failure)})
            return
        finally:
            await _aclose(chunks)
        await send({"type": "http.response.body", "body": closing})

    @staticmethod
    def _headers(ctx: RequestContext) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"x-request-id", ctx.request_id.encode()),
            (b"x-interlock-overhead-ms", f"{ctx.overhead_ms():.3f}".encode()),
        ]
        if ctx.deployment is not None:
            headers.append((b"x-interlock-deployment", ctx.deployment.id.encode()))
        if ctx.attempts:
            headers.append((b"x-interlock-attempts", attempts_header(ctx)))
        return headers

    async def _send_error(
        self, send: Send, err: GatewayError, request_id: str, ctx: RequestContext | None
    ) -> None:
        headers = [(b"x-request-id", request_id.encode()), *error_headers(err)]
        if ctx is not None:
            headers.append((b"x-interlock-overhead-ms", f"{ctx.overhead_ms():.3f}".encode()))
            if ctx.attempts:
                headers.append((b"x-interlock-attempts", attempts_header(ctx)))
        await send_bytes(send, err.status, error_body(err, self._front.front), headers, _JSON)


def attempts_header(ctx: RequestContext) -> bytes:
    """``deployment=outcome:ms`` for each attempt, in order."""
    return ", ".join(f"{a.deployment}={a.outcome}:{a.latency_ms:.1f}ms" for a in ctx.attempts).encode()


def _routing_constraints(ctx: RequestContext, scope: Scope) -> None:
    """``x-interlock-pool`` and ``x-interlock-labels: k=v,k2=v2`` restrict where a request may go."""
    pool = header(scope, b"x-interlock-pool")
    if pool:
        ctx.required_pool = pool.strip()
    labels = header(scope, b"x-interlock-labels")
    if labels:
        for item in labels.split(","):
            key, sep, value = item.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise InvalidRequest(
                    f"x-interlock-labels must be a comma-separated list of key=value pairs, got {item!r}.",
                    param="x-interlock-labels",
                )
            ctx.required_labels[key.strip()] = value.strip()


async def _aclose(chunks: AsyncIterator[Chunks]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()
