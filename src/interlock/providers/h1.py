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
  to stop generating, and a half-read connection never goes back to the pool.

Transport failures raise :class:`TransportError` subclasses; ``providers/http.py`` turns them into
the gateway's errors.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections import deque
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

from interlock.providers.proxy import Proxy, open_tunnel

__all__ = [
    "ConnectTimeout",
    "ConnectionClosed",
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


class TransportError(Exception):
    """The exchange with the upstream failed below HTTP semantics."""


class ConnectTimeout(TransportError):
    pass


class ConnectionClosed(TransportError):
    """The upstream closed (or reset) the connection before the response was complete."""

    def __init__(self, message: str, *, clean: bool = False) -> None:
        super().__init__(message)
        self.clean = clean
        """An orderly close (EOF), not a reset: it may end a body delimited by the close."""


class ReadTimeout(TransportError):
    pass


class ProtocolError(TransportError):
    """The upstream's bytes are not a valid HTTP/1.1 response."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where requests go: ``scheme://host:port`` and the path prefix of the base URL."""

    scheme: str
    host: str
    port: int
    prefix: str

    @classmethod
    def parse(cls, url: str) -> Origin:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base URL must be http:// or https:// with a host, got {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


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
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._started = False
        self._done = False
        self._keep_alive = False
        self._error: TransportError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._decoder: _Decoder | None = None
        self._last_read = pool.loop.time()
        self._watchdog: asyncio.TimerHandle | None = pool.loop.call_later(pool.read_s, self._check_silence)
        self._length_known = False
        self._collect = False

    # --- consumer side ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Wait for the status line and headers."""
        while not self._started:
            await self._wait()

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
            self._decoder = _Decoder.for_encoding(encoding)
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


class _Decoder:
    """Incremental gzip / deflate decoding of a body."""

    __slots__ = ("_raw_fallback", "_z")

    def __init__(self, wbits: int, raw_fallback: bool) -> None:
        self._z = zlib.decompressobj(wbits)
        self._raw_fallback = raw_fallback

    @classmethod
    def for_encoding(cls, encoding: str) -> _Decoder:
        if encoding in ("gzip", "x-gzip"):
            return cls(16 + zlib.MAX_WBITS, False)
        if encoding == "deflate":
            return cls(zlib.MAX_WBITS, True)  # zlib-wrapped as the spec says; raw deflate as some send
        raise ProtocolError(f"unsupported content encoding {encoding[:40]!r}")

    def feed(self, data: bytes, limit: int) -> bytes:
        """Decode ``data``; :class:`ProtocolError` if it decodes to more than ``limit`` bytes (a
        compressed body can expand a thousandfold)."""
        try:
            out = self._z.decompress(data, limit + 1)
        except zlib.error:
            if not self._raw_fallback:
                raise ProtocolError("body does not decode as its content encoding says") from None
            self._raw_fallback = False
            self._z = zlib.decompressobj(-zlib.MAX_WBITS)
            return self.feed(data, limit)
        if len(out) > limit or self._z.unconsumed_tail:
            raise ProtocolError(f"body decodes to more than {limit} bytes")
        return out

    def flush(self) -> bytes:
        try:
            return self._z.flush()
        except zlib.error:
            raise ProtocolError("body does not decode as its content encoding says") from None


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
        *,
        connect_s: float,
        read_s: float,
        keepalive_s: float,
        proxy: Proxy | None = None,
    ) -> None:
        self.origin = origin
        self._proxy = proxy
        self.read_s = read_s
        self._connect_s = connect_s
        self._keepalive_s = keepalive_s
        self._idle: list[_Connection] = []
        self._all: set[_Connection] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self._ssl: ssl.SSLContext | None = ssl.create_default_context() if origin.scheme == "https" else None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None
        return self._loop

    async def send(self, data: bytes) -> Response:
        """Send one complete request (head and body bytes) and return its response handle."""
        if asyncio.get_running_loop() is not self._loop:
            self._adopt_loop()
        conn = self._reuse() or await self._connect()
        return conn.send(data)

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
        loop = self.loop
        origin = self.origin
        proxy = self._proxy
        try:
            async with asyncio.timeout(self._connect_s):
                if proxy is not None and self._ssl is not None:
                    # TLS end to end inside a CONNECT tunnel
                    raw = await open_tunnel(proxy, origin.host, origin.port)
                    conn = _Connection(self)
                    tls = await loop.start_tls(raw, conn, self._ssl, server_hostname=origin.host)
                    if tls is None:  # pragma: no cover - the connection closed during the handshake
                        raise ConnectionResetError("the tunnel closed during the TLS handshake")
                    conn.connection_made(tls)
                else:
                    # a plain-http upstream behind a proxy gets requests in absolute form (HttpClient)
                    host, port = (proxy.host, proxy.port) if proxy is not None else (origin.host, origin.port)
                    _, conn = await loop.create_connection(
                        lambda: _Connection(self),
                        host,
                        port,
                        ssl=self._ssl,
                        server_hostname=origin.host if self._ssl is not None else None,
                    )
        except TimeoutError:
            raise ConnectTimeout(f"no connection within {self._connect_s:g} s") from None
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
