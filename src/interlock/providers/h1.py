"""HTTP/1.1 to one upstream origin: keep-alive connections as asyncio protocols, parsed by httptools.

Why not aiohttp: per request it cost 140–200 µs of gateway CPU, a fifth of everything the gateway did;
this client sends pre-encoded header bytes and parses with httptools' C parser, for a few tens of µs
(``benchmarks/components.py`` measures both). It does only what an upstream call needs:

* one request at a time per connection, connections pooled per origin (most recently used first, so
  surplus connections age out), idle ones closed after ``keepalive_s``;
* a response body delivered as it arrives, with back-pressure (reading pauses while the consumer is
  behind), so streams are never buffered whole;
* a read timeout on silence, a connect timeout, TLS with the system's trust store;
* gzip and deflate bodies decoded; chunked, length-delimited and close-delimited bodies;
* a response that is dropped before its end closes its connection: that is what tells the upstream
  to stop generating, and a half-read connection never goes back to the pool;
* a request that meets a pooled connection the upstream had already closed (EOF or reset before
  any byte of an answer) is sent again, once, on a new connection.

Connections are opened by a :class:`~interlock.providers.transport.Connector` (sockets by default).

Transport failures raise :class:`TransportError` subclasses; ``providers/http.py`` turns them into
the gateway's errors.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import cast

import httptools

from interlock.providers.decoding import Decoder
from interlock.providers.transport import (
    ConnectionClosed,
    Connector,
    ConnectTimeout,
    Origin,
    ProtocolError,
    ReadTimeout,
    TransportError,
)

__all__ = [
    "ConnectTimeout",
    "ConnectionClosed",
    "Connector",
    "Origin",
    "Pool",
    "ProtocolError",
    "ReadTimeout",
    "Response",
    "TransportError",
]

_HIGH_WATER = 256 * 1024
"""Buffered body bytes at which reading pauses until the consumer catches up."""
_MAX_DECODED_PIECE = 16 * 1024 * 1024
"""The most one compressed piece of a streamed body may expand to."""
_MAX_HEADER_BYTES = 64 * 1024
"""A response head (or trailer) larger than this is an upstream fault, not something to buffer."""


class Response:
    """One response, read as it arrives. ``status`` and ``headers`` (lower-case names) are set once
    :meth:`start` returns. Always :meth:`release` it: that pools or closes its connection."""

    __slots__ = (
        "_buffered",
        "_chunks",
        "_collect",
        "_conn",
        "_decoder",
        "_done",
        "_error",
        "_header_bytes",
        "_keep_alive",
        "_last_read",
        "_length_known",
        "_paused",
        "_pool",
        "_raw_headers",
        "_received",
        "_started",
        "_waiter",
        "_watchdog",
        "headers",
        "status",
    )

    def __init__(self, conn: _Connection, pool: Pool) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self._conn: _Connection | None = conn
        self._pool = pool
        self._raw_headers: list[tuple[bytes, bytes]] = []
        self._header_bytes = 0
        self._received = False
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._started = False
        self._done = False
        self._keep_alive = False
        self._error: TransportError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._decoder: Decoder | None = None
        self._last_read = pool.loop.time()
        self._watchdog: asyncio.TimerHandle | None = pool.loop.call_later(pool.read_s, self._check_silence)
        self._length_known = False
        self._collect = False

    # --- consumer side ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Wait for the status line and headers."""
        while not self._started:
            await self._wait()

    @property
    def began(self) -> bool:
        """Whether any byte of the answer has arrived."""
        return self._received

    async def read(self, limit: int) -> bytes:
        """The whole body; :class:`ProtocolError` if it exceeds ``limit`` bytes."""
        self._collect = True
        if self._paused:
            self._resume()
        while not self._done:
            if self._buffered > limit:
                raise ProtocolError(f"response body larger than {limit} bytes")
            await self._wait()
        if self._buffered > limit:
            raise ProtocolError(f"response body larger than {limit} bytes")
        body = b"".join(self._chunks)
        self._chunks.clear()
        self._buffered = 0
        return self._finish_decoding(body, limit)

    async def next_chunk(self) -> bytes | None:
        """The next piece of the body as it arrived (several pieces joined when they queued up);
        None at its end."""
        while True:
            if self._chunks:
                chunk = self._chunks.popleft() if len(self._chunks) == 1 else b"".join(self._chunks)
                self._chunks.clear()
                self._buffered = 0
                if self._paused:
                    self._resume()
                if self._decoder is not None:
                    chunk = self._decoder.feed(chunk, _MAX_DECODED_PIECE)
                    if not chunk:
                        continue
                return chunk
            if self._done:
                if self._decoder is not None:
                    tail, self._decoder = self._decoder.flush(), None
                    if tail:
                        return tail
                return None
            await self._wait()

    def release(self) -> None:
        """Give the connection back to the pool if the response was read to its end, else close it.
        Idempotent."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        self._stop_watchdog()
        conn.response = None
        if self._done and self._keep_alive and self._error is None and not conn.closed:
            self._pool.release(conn)
        else:
            conn.close()

    async def _wait(self) -> None:
        if self._error is not None:
            raise self._error
        waiter = self._waiter = self._pool.loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None
        if self._error is not None:
            raise self._error

    def _finish_decoding(self, body: bytes, limit: int) -> bytes:
        decoder, self._decoder = self._decoder, None
        return body if decoder is None else decoder.feed(body, limit) + decoder.flush()

    def _resume(self) -> None:
        self._paused = False
        self._last_read = self._pool.loop.time()  # silence while paused was ours, not the upstream's
        if self._conn is not None and self._conn.transport is not None:
            self._conn.transport.resume_reading()

    # --- producer side (called by the connection) ------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def on_data(self) -> None:
        self._last_read = self._pool.loop.time()
        self._received = True

    def on_headers(self, status: int, keep_alive: bool) -> None:
        if status < 200:  # an interim response (100 Continue, 103 Early Hints): the real one follows
            self._raw_headers.clear()
            return
        self.status = status
        headers = self.headers
        for name, value in self._raw_headers:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        self._raw_headers.clear()
        self._keep_alive = keep_alive
        self._length_known = "content-length" in headers or "chunked" in headers.get("transfer-encoding", "")
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("identity", ""):
            self._decoder = Decoder.for_encoding(encoding)
        self._started = True
        self._wake()

    def on_body(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > _HIGH_WATER and not self._paused and not self._collect and self._conn is not None:
            transport = self._conn.transport
            if transport is not None:
                self._paused = True
                transport.pause_reading()
        self._wake()

    def on_complete(self) -> None:
        if not self._started:  # the end of an interim response
            return
        self._done = True
        self._stop_watchdog()
        self._wake()

    def fail(self, error: TransportError) -> None:
        if self._done or self._error is not None:
            return
        delimited_by_close = self._started and not self._length_known and self.status not in (204, 304)
        if isinstance(error, ConnectionClosed) and error.clean and delimited_by_close:
            self.on_complete()  # the body ended with the connection, as its headers said it would
            return
        self._error = error
        self._stop_watchdog()
        self._wake()

    def _check_silence(self) -> None:
        self._watchdog = None
        if self._done or self._error is not None:
            return
        loop = self._pool.loop
        silent_since = loop.time() if self._paused else self._last_read
        due = silent_since + self._pool.read_s
        if loop.time() < due:
            self._watchdog = loop.call_at(due, self._check_silence)
            return
        self.fail(ReadTimeout(f"no data for {self._pool.read_s:g} s"))
        if self._conn is not None:
            self._conn.close()

    def _stop_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one response at a time."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.response: Response | None = None
        self._parser = httptools.HttpResponseParser(self)

    def send(self, data: bytes) -> Response:
        response = self.response = Response(self, self.pool)
        assert self.transport is not None
        self.transport.write(data)
        return response

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None:  # bytes nobody asked for on an idle connection: it is not reusable
            self.close()
            return
        response.on_data()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            # a callback's own error (an unsupported content encoding) arrives wrapped
            cause = exc.__context__
            response.fail(
                cause if isinstance(cause, TransportError) else ProtocolError("invalid HTTP response")
            )
            self.close()
            return
        if not response._started:
            # the parser holds an unfinished head itself: bound it
            response._header_bytes += len(data)
            if response._header_bytes > _MAX_HEADER_BYTES:
                response.fail(ProtocolError("response headers larger than 64 KiB"))
                self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.lost(self)
        response = self.response
        if response is not None:
            reason = type(exc).__name__ if exc is not None else "closed"
            response.fail(ConnectionClosed(f"connection {reason}", clean=exc is None))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        if self.response is not None:
            self.response._raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.response is not None:
            parser = self._parser
            self.response.on_headers(parser.get_status_code(), parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        if self.response is not None:
            self.response.on_body(body)

    def on_message_complete(self) -> None:
        if self.response is not None:
            self.response.on_complete()


class Pool:
    """Keep-alive connections to one origin. Unbounded: concurrency limits live in routing."""

    def __init__(
        self,
        origin: Origin,
        connector: Connector,
        *,
        connect_s: float,
        read_s: float,
        keepalive_s: float,
    ) -> None:
        self.origin = origin
        self._connector = connector
        self.read_s = read_s
        self._connect_s = connect_s
        self._keepalive_s = keepalive_s
        self._idle: list[_Connection] = []
        self._all: set[_Connection] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None
        return self._loop

    async def request(self, data: bytes) -> Response:
        """Send one complete request (head and body bytes) and wait for the head of its response.

        Connection errors raise ``OSError`` or :class:`ConnectTimeout`; failures after the request
        left raise other transport errors. An upstream may close a pooled connection while it
        sits idle, the close still on its way when the request is written: EOF or a reset then
        arrives before any byte of an answer. The upstream cannot have processed that request, so it
        is sent again — POST included — once, on a new connection.
        """
        if asyncio.get_running_loop() is not self._loop:
            self._adopt_loop()
        conn = self._reuse()
        if conn is not None:
            response = conn.send(data)
            try:
                return await _started(response)
            except ConnectionClosed:
                if response.began:
                    raise
        conn = await self._connect()
        return await _started(conn.send(data))

    def _adopt_loop(self) -> None:
        """Connections belong to the loop that opened them: a pool used from a new loop starts afresh."""
        self._loop = asyncio.get_running_loop()
        self._idle, self._all, self._sweeper = [], set(), None

    def _reuse(self) -> _Connection | None:
        idle = self._idle
        if not idle:
            return None
        now = self.loop.time()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < self._keepalive_s:
                return conn
            conn.close()
        return None

    async def _connect(self) -> _Connection:
        conn = _Connection(self)
        try:
            async with asyncio.timeout(self._connect_s):
                await self._connector.connect(self.origin, conn)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, TimeoutError):
                raise ConnectTimeout(f"no connection within {self._connect_s:g} s") from None
            raise
        if conn.transport is None:
            raise ConnectionResetError("the connector attached no transport")
        if not conn.closed:
            self._all.add(conn)
        return conn

    def release(self, conn: _Connection) -> None:
        conn.idle_since = self.loop.time()
        self._idle.append(conn)
        if self._sweeper is None:
            self._sweeper = self.loop.call_later(self._keepalive_s, self._sweep)

    def lost(self, conn: _Connection) -> None:
        self._all.discard(conn)

    def _sweep(self) -> None:
        """Close connections idle for longer than ``keepalive_s``; forget closed ones."""
        self._sweeper = None
        cutoff = self.loop.time() - self._keepalive_s
        keep: list[_Connection] = []
        for conn in self._idle:
            if conn.closed or conn.idle_since <= cutoff:
                conn.close()
            else:
                keep.append(conn)
        self._idle = keep
        if keep:
            self._sweeper = self.loop.call_later(self._keepalive_s, self._sweep)

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in list(self._all):
            conn.close()
        self._all.clear()
        self._idle.clear()


async def _started(response: Response) -> Response:
    """``response`` once its head has arrived; released (its connection closed) if that fails."""
    try:
        await response.start()
    except BaseException:
        response.release()
        raise
    return response
