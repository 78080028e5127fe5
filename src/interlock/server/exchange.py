"""One request/response exchange on a model route, whatever the API dialect.

Checks the caller's key from the headers first — a missing, unknown or revoked key is refused
before a byte of the body is read — then reads the body under the size limit, lets the dialect
(:class:`FrontDoor`) turn it into a :class:`RequestContext`, runs the chain while watching for the
client going away, and writes the reply — complete, or as server-sent events chunk by chunk.
Errors before the first byte become a status and an error body; errors after it become an error
event that ends the stream, so a broken answer is never a silent, truncated 200.

The gateway assigns every request its own id (``x-request-id`` in the answer); the caller's
``x-request-id``, cut to printable ASCII, is kept as ``client_request_id`` and echoed back in
``x-client-request-id``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, NamedTuple, Protocol

from interlock.core.context import Chunks, Front, Operation, Principal, Reply, RequestContext
from interlock.core.errors import GatewayError
from interlock.gateway.chain import Next
from interlock.governance.keys import KeyCache
from interlock.routing.snapshot import SnapshotRef
from interlock.server.asgi import (
    Receive,
    Scope,
    Send,
    api_key_from,
    cancel_on_disconnect,
    header,
    new_request_id,
    read_body,
    read_json_object,
    send_bytes,
)
from interlock.server.caller_input import client_request_id, routing_hints
from interlock.server.errors import error_body, error_headers, for_caller, internal_error

__all__ = ["Exchange", "FrontDoor", "api_key_from", "attempts_header"]

_JSON = b"application/json"


class StreamRenderer(Protocol):
    """Writes one stream in a dialect: each batch of chunks as event bytes, then the closing events."""

    def batch(self, chunks: Chunks) -> bytes: ...

    def close(self) -> bytes: ...


class FrontDoor(Protocol):
    """An API dialect: how requests are read and replies written."""

    front: Front
    operation: Operation

    def parse(self, body: dict[str, Any], request_id: str) -> RequestContext: ...

    def render(self, ctx: RequestContext, reply: Reply) -> bytes: ...

    def stream_renderer(self, ctx: RequestContext) -> StreamRenderer: ...

    def render_stream_error(self, err: GatewayError) -> bytes: ...


class Exchange:
    """An ASGI app serving one model route through the chain."""

    def __init__(
        self, front: FrontDoor, chain: Next, keys: KeyCache, snapshot: SnapshotRef, max_body_bytes: int
    ) -> None:
        self._front = front
        self._chain = chain
        self._keys = keys
        self._snapshot = snapshot
        self._limit = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = new_request_id()
        client_id = client_request_id(scope)
        api_key = api_key_from(scope)
        try:
            principal = await self._keys.authenticate(api_key)
        except GatewayError as err:
            await self._refuse(scope, send, err, _Ids(request_id, client_id), api_key)
            return
        try:
            raw = await read_body(scope, receive, self._limit)
            ctx = self._front.parse(read_json_object(raw), request_id)
            route = self._snapshot.current.models.get(ctx.model)
            routing_hints(ctx, scope, route.session_header() if route is not None else None)
        except GatewayError as err:
            await self._send_error(send, err, _Ids(request_id, client_id), None)
            return
        except asyncio.CancelledError:
            return
        self._fill(ctx, scope, api_key, client_id, principal)
        await cancel_on_disconnect(scope, receive, lambda: self._serve(ctx, send))

    async def _refuse(self, scope: Scope, send: Send, err: GatewayError, ids: _Ids, key: str | None) -> None:
        """Answer a request refused from its headers, body unread, through the chain (whose auth
        stage raises ``err``) so that it is recorded like any other; its model is not known."""
        ctx = RequestContext(
            request_id=ids.request_id,
            operation=self._front.operation,
            model="",
            body={},
            stream=False,
            front=self._front.front,
        )
        self._fill(ctx, scope, key, ids.client_id, None)
        ctx.error = err
        await self._serve(ctx, send)

    @staticmethod
    def _fill(
        ctx: RequestContext, scope: Scope, key: str | None, client_id: str | None, principal: Principal | None
    ) -> None:
        ctx.api_key = key
        ctx.principal = principal
        ctx.client_request_id = client_id
        ctx.headers = scope["headers"]
        ctx.traceparent = header(scope, b"traceparent")

    async def _serve(self, ctx: RequestContext, send: Send) -> None:
        try:
            reply = await self._chain(ctx)
        except GatewayError as err:
            await self._send_error(send, for_caller(err, ctx), _Ids.of(ctx), ctx)
            return
        except Exception as exc:
            await self._send_error(send, internal_error(exc, ctx.request_id), _Ids.of(ctx), ctx)
            return
        if reply.stream is not None:
            await self._send_stream(send, ctx, reply.stream)
            return
        try:
            body = self._front.render(ctx, reply)
        except GatewayError as err:
            await self._send_error(send, for_caller(err, ctx), _Ids.of(ctx), ctx)
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
            shown = for_caller(err, ctx)
            await send({"type": "http.response.body", "body": self._front.render_stream_error(shown)})
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
            *_Ids.of(ctx).headers(),
            (b"x-interlock-overhead-ms", f"{ctx.overhead_ms():.3f}".encode()),
        ]
        if ctx.deployment is not None:
            headers.append((b"x-interlock-deployment", ctx.deployment.id.encode()))
        if ctx.attempts:
            headers.append((b"x-interlock-attempts", attempts_header(ctx)))
        if ctx.tier is not None:
            headers.append((b"x-interlock-tier", tier_header(ctx.tier)))
        if ctx.reply_headers:
            headers += ctx.reply_headers
        return headers

    async def _send_error(self, send: Send, err: GatewayError, ids: _Ids, ctx: RequestContext | None) -> None:
        headers = [*ids.headers(), *error_headers(err)]
        if ctx is not None:
            headers.append((b"x-interlock-overhead-ms", f"{ctx.overhead_ms():.3f}".encode()))
            if ctx.attempts:
                headers.append((b"x-interlock-attempts", attempts_header(ctx)))
            if ctx.reply_headers:
                headers += ctx.reply_headers
        await send_bytes(send, err.status, error_body(err, self._front.front), headers, _JSON)


class _Ids(NamedTuple):
    """The gateway's request id and the caller's own, as response headers."""

    request_id: str
    client_id: str | None

    @classmethod
    def of(cls, ctx: RequestContext) -> _Ids:
        return cls(ctx.request_id, ctx.client_request_id)

    def headers(self) -> list[tuple[bytes, bytes]]:
        found = [(b"x-request-id", self.request_id.encode())]
        if self.client_id is not None:
            found.append((b"x-client-request-id", self.client_id.encode()))
        return found


def attempts_header(ctx: RequestContext) -> bytes:
    """``deployment=outcome:ms`` for each attempt, in order."""
    return ", ".join(f"{a.deployment}={a.outcome}:{a.latency_ms:.1f}ms" for a in ctx.attempts).encode()


def tier_header(tier: dict[str, object]) -> bytes:
    """``x-interlock-tier``: the tier a tiered alias chose, its model and the classifier's confidence."""
    return f"{tier['tier']}; model={tier['model']}; confidence={tier['confidence']}".encode()


async def _aclose(chunks: AsyncIterator[Chunks]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()
