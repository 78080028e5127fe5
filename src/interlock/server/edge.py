"""The HTTP/1.1 connection as the gateway's first line of defence: uvicorn's httptools protocol with
time and size limits that uvicorn does not have.

- **Slow headers (slowloris).** A request's request line and headers must arrive within
  ``header_timeout_s`` of its first byte — or of the connection opening, so a connection that sends
  nothing is closed too. Uvicorn alone waits forever.
- **Slow bodies.** A request's body must arrive within ``body_timeout_s`` of its headers.
- **Header floods.** At most ``max_headers`` header lines and ``max_header_bytes`` bytes of request
  line and headers (431). httptools buffers a header line until it ends, so the bytes are counted as
  they arrive, not per header.
- **Trailers** are never passed to the application (they would be appended to the headers the app
  already holds); they count against the same limits.
- **Too many connections.** Connections accepted beyond ``max_connections`` get a 503 and are
  closed at once, before a byte of theirs is read.
- **Clients that go away.** Every request's scope carries a ``DisconnectWatch``; a lost connection
  fires it, which cancels the task serving the request (no watcher task per request).
- **Unread bodies.** When the app answered before reading a body (a 401, a 413), the rest of the
  body is read and thrown away — up to ``DRAIN_BYTES``, then the connection is closed. Reading a
  little first lets the client see the answer; closing at once would make many clients report a
  reset instead.

The limits come from the app through the ASGI lifespan state (``EDGE_STATE_KEY``), so every worker
process gets its own from its own settings; an app that supplies none gets the defaults.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from interlock.config.schema import ServerSpec
from interlock.core.errors import GatewayError, InvalidRequest, ServiceUnavailable
from interlock.server.asgi import DISCONNECT_WATCH, DisconnectWatch
from interlock.server.errors import error_body

__all__ = ["DRAIN_BYTES", "EDGE_STATE_KEY", "EdgeLimits", "EdgeProtocol", "uvicorn_options"]

EDGE_STATE_KEY = "interlock.edge_limits"
DRAIN_BYTES = 4 * 1024 * 1024
"""Bytes of an unread request body discarded after the answer, before the connection is closed."""


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    """What one connection may send, and how slowly."""

    header_timeout_s: float
    body_timeout_s: float
    max_connections: int
    max_headers: int
    max_header_bytes: int

    @classmethod
    def from_settings(cls, server: ServerSpec) -> EdgeLimits:
        return cls(
            header_timeout_s=server.header_timeout_s,
            body_timeout_s=server.body_timeout_s,
            max_connections=server.max_connections,
            max_headers=server.max_headers,
            max_header_bytes=server.max_header_bytes,
        )


_DEFAULT_LIMITS = EdgeLimits.from_settings(ServerSpec())


def uvicorn_options(server: ServerSpec) -> dict[str, Any]:
    """The uvicorn settings ``interlock up`` serves with (``host``, ``port``, ``workers`` aside)."""
    return {
        "loop": "uvloop",
        "http": EdgeProtocol,
        "log_level": "warning",
        "access_log": False,
        "timeout_graceful_shutdown": 10,
        "timeout_keep_alive": server.keepalive_s,
        # requests beyond it get uvicorn's 503; EdgeProtocol closes connections beyond it
        "limit_concurrency": server.max_connections,
    }


class _Refused(Exception):
    """Raised from a parser callback to stop parsing; ``data_received`` answers with ``error``."""

    def __init__(self, error: GatewayError) -> None:
        super().__init__(error.message)
        self.error = error


class EdgeProtocol(HttpToolsProtocol):
    """Uvicorn's httptools protocol with header and body deadlines and header limits."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        limits = app_state.get(EDGE_STATE_KEY)
        self.limits: EdgeLimits = limits if isinstance(limits, EdgeLimits) else _DEFAULT_LIMITS
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._in_headers = False
        self._in_body = False
        self._header_bytes = 0
        self._header_count = 0
        self._body_fed = 0
        self._idle_bytes = 0
        self._drained = 0
        self._watches: list[DisconnectWatch] = []
        """Of the requests read on this connection whose answers are not complete."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._answer_and_close(ServiceUnavailable("The gateway has too many open connections."))
            return
        self._header_timer = self.loop.call_later(self.limits.header_timeout_s, self._headers_too_slow)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)
        self._fire_watches()

    def _fire_watches(self) -> None:
        watches, self._watches = self._watches, []
        for watch in watches:
            watch.fire()

    def on_response_complete(self) -> None:
        if self._watches:
            self._watches.pop(0)  # answers complete in the order their requests came
        super().on_response_complete()

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        self._body_fed = 0
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            refused = exc.__context__
            if isinstance(refused, _Refused):
                self._answer_and_close(refused.error)
            else:
                self._answer_and_close(InvalidRequest("Invalid HTTP request received."))
            return
        except httptools.HttpParserError:
            self._answer_and_close(InvalidRequest("Invalid HTTP request received."))
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        self._count(len(data))

    def _count(self, size: int) -> None:
        """After each read: bound what httptools buffers — header bytes while in the headers and,
        while in the body, bytes that carried no body (trailers) since the last that did — and
        start the deadline of a part that did not arrive whole in one read. (Most requests do, and
        then cost no timer at all.)"""
        if self._in_headers:
            self._header_bytes += size
            if self._header_bytes > self.limits.max_header_bytes:
                self._answer_and_close(_too_large("Request headers exceed the size limit."))
            elif self._header_timer is None:
                self._header_timer = self.loop.call_later(
                    self.limits.header_timeout_s, self._headers_too_slow
                )
        elif self._in_body:
            idle = size - self._body_fed
            self._idle_bytes = idle if self._body_fed else self._idle_bytes + idle
            if self._idle_bytes > self.limits.max_header_bytes:
                self._answer_and_close(_too_large("Request trailers exceed the size limit."))
            elif self._body_timer is None:
                self._body_timer = self.loop.call_later(self.limits.body_timeout_s, self._body_too_slow)

    # parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        watch = DisconnectWatch()
        self.scope[DISCONNECT_WATCH] = watch  # type: ignore[literal-required]
        self._watches.append(watch)
        self._in_headers = True
        self._header_bytes = 0
        self._header_count = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            raise _Refused(_too_large(f"More than {self.limits.max_headers} request headers."))
        if self._in_headers:
            super().on_header(name, value)
        # else: a trailer, dropped — the app has had the headers since on_headers_complete

    def on_headers_complete(self) -> None:
        self._in_headers = False
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        self._in_body = True
        self._idle_bytes = 0
        self._drained = 0
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._body_fed += len(body)
        if self.cycle.response_complete:
            self._drained += len(body)
            if self._drained > DRAIN_BYTES:
                self.transport.close()
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._in_body = False
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        super().on_message_complete()

    # deadlines

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._busy():
            # a pipelined request waits behind one being answered; its turn will come
            self._header_timer = self.loop.call_later(self.limits.header_timeout_s, self._headers_too_slow)
        elif self._in_headers:
            self._answer_and_close(_timeout("The request headers did not arrive in time."))
        else:
            self.transport.close()  # a connection that never sent a byte

    def _body_too_slow(self) -> None:
        self._body_timer = None
        if self.pipeline:
            # reading is paused while an earlier request is answered: the body cannot move yet
            self._body_timer = self.loop.call_later(self.limits.body_timeout_s, self._body_too_slow)
        elif self.cycle is not None and self.cycle.response_started:
            self.transport.close()  # answered already; the rest of the body is not worth waiting for
        else:
            self._answer_and_close(_timeout("The request body did not arrive in time."))

    def _busy(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _answer_and_close(self, error: GatewayError) -> None:
        """Answer ``error`` if that answer would be the next response on the wire, then close; the
        app, if it is still running, sees a disconnect."""
        answer = self._may_answer()
        self._cancel_timers()
        self._in_headers = self._in_body = False
        if self.transport.is_closing():
            return
        if answer:
            body = error_body(error)
            head = (
                STATUS_LINE[error.status] + b"content-type: application/json\r\n"
                b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n"
            )
            self.transport.write(head + body)
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # anything the app still sends is dropped
            self.cycle.message_event.set()
        self.transport.close()
        self._fire_watches()

    def _may_answer(self) -> bool:
        if self.pipeline:
            return False  # an earlier request's answer is still to come
        cycle = self.cycle
        if self._in_body:  # the request being read is the one in flight
            return cycle is not None and not cycle.response_started
        return cycle is None or cycle.response_complete

    def _cancel_timers(self) -> None:
        for timer in (self._header_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._header_timer = self._body_timer = None


def _too_large(message: str) -> GatewayError:
    return InvalidRequest(message, status=431)


def _timeout(message: str) -> GatewayError:
    return InvalidRequest(message, status=408)
