"""One HTTP exchange at the raw ASGI level: answering, streaming, dropping, and noticing a client leave.

The inference routes speak ASGI directly instead of through Starlette's ``Request``/``Response``:
they need to know the moment a client disconnects (to stop generating and count the cancellation),
and to drop a connection with no response at all, which no response class can express.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Coroutine, Iterable
from typing import Any, Literal

from starlette.types import Receive, Scope, Send

from interlock.sim.engine import Engine, pause
from interlock.sim.responses import ApiError

__all__ = ["TRANSPORT_KEY", "Exchange", "Outcome"]

#: Scope key under which the simulator's app stores the connection's asyncio transport.
TRANSPORT_KEY = "interlock.sim.transport"

Outcome = Literal["done", "disconnected", "dropped"]

_JSON = b"application/json"
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]
# SO_LINGER on with a zero timeout makes close() send a TCP RST instead of a FIN.
_LINGER_RESET = struct.pack("ii", 1, 0)
# Upper bound on waiting for the server to notice a connection we closed ourselves.
_DROP_GRACE_S = 30.0


class Exchange:
    """The request's scope and channels, plus what has happened to the response so far."""

    __slots__ = ("_receive", "_send", "dropped", "scope")

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self._receive = receive
        self._send = send
        #: Set when the simulator itself closed the connection (a fault), not the client.
        self.dropped = False

    async def read_body(self) -> bytes:
        """The whole request body."""
        message = await self._receive()
        body = message.get("body", b"")
        if not message.get("more_body"):
            return body  # type: ignore[no-any-return]
        parts = [body]
        while message.get("more_body"):
            message = await self._receive()
            parts.append(message.get("body", b""))
        return b"".join(parts)

    async def respond(
        self,
        status: int,
        body: bytes,
        content_type: bytes = _JSON,
        headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        """Send a complete response."""
        await self._send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", b"%d" % len(body)),
                    *headers,
                ],
            }
        )
        await self._send({"type": "http.response.body", "body": body})

    async def fail(self, error: ApiError) -> None:
        """Send an error in OpenAI's shape."""
        await self.respond(error.status, error.body(), headers=error.headers())

    async def start_stream(self, content_type: bytes | None = None) -> None:
        """Send the headers of a server-sent-events response."""
        headers = _SSE_HEADERS if content_type is None else [(b"content-type", content_type)]
        await self._send({"type": "http.response.start", "status": 200, "headers": headers})

    async def write(self, data: bytes, *, last: bool = False) -> None:
        """Send part of a streamed body; ``last`` ends it."""
        await self._send({"type": "http.response.body", "body": data, "more_body": not last})

    async def drop(self, *, reset: bool) -> None:
        """Close the connection under the response: ``reset`` aborts with a TCP RST and no bytes;
        otherwise what was sent is flushed, then the socket is closed mid-body.

        Needs the transport that :class:`~interlock.sim.app.SimApp` puts in the scope (uvicorn), and
        must run under :meth:`watch`, which cancels it once the server has seen the connection go.
        """
        transport = self._transport()
        if transport is None:
            raise ConnectionAbortedError("cannot drop the connection: no transport in the ASGI scope")
        self.dropped = True
        if reset:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            transport.abort()
        else:
            transport.close()
        # Returning now would let the server answer in our place ("returned without a response"),
        # so wait for it to notice the closed connection: watch() then cancels this wait.
        await pause(_DROP_GRACE_S)

    async def watch(self, work: Coroutine[Any, Any, None], engine: Engine) -> Outcome:
        """Run ``work`` until it ends, the client disconnects, or the simulator shuts down.

        On a disconnect the work is cancelled (its ``finally`` blocks free slots and batch places).
        On shutdown the connection is reset first, so nothing waits for a hung request.
        """
        task = asyncio.ensure_future(work)
        listener = asyncio.ensure_future(self._until_disconnect())
        closing = engine.closing_signal()
        try:
            await asyncio.wait((task, listener, closing), return_when=asyncio.FIRST_COMPLETED)
            transport = self._transport()
            if closing.done() and not task.done() and not listener.done() and transport is not None:
                transport.abort()
                # Let the server see the connection go before the app returns, or it would try to
                # answer in our place.
                await asyncio.wait((task, listener), return_when=asyncio.FIRST_COMPLETED)
        finally:
            engine.discard_signal(closing)
            if not task.done():
                task.cancel()
            listener.cancel()
            await asyncio.wait((task, listener))
        if task.cancelled():
            return "dropped" if self.dropped else "disconnected"
        error = task.exception()
        if error is not None:
            raise error
        return "dropped" if self.dropped else "done"

    def _transport(self) -> asyncio.Transport | None:
        # Duck-typed: uvloop's transports implement asyncio's interface without subclassing it.
        transport = self.scope.get(TRANSPORT_KEY)
        return transport if hasattr(transport, "abort") and hasattr(transport, "close") else None

    async def _until_disconnect(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass
