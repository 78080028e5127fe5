"""A minimal Redis client for the governance hot path: one pipelined connection, RESP2, no pool.

Why not redis-py: one ``EVALSHA`` through its asyncio client costs ~30 µs of CPU in the calling
process (connection pool checkout, a stream reader, a timeout per call), a fifth of what a whole
gateway request may cost. This client writes each command on one connection and appends a future to
a FIFO; replies come back in order, so ``data_received`` resolves the oldest futures with as many
replies as are buffered. It costs about a third of redis-py's CPU per call
(``benchmarks/governance_engine.py``). Commands issued while others are in flight are written together
at the end of the loop's turn: one system call for many, under load.

- **Timeouts** cost nothing per call beyond reading the loop clock: one timer per connection wakes at
  the oldest pending call's deadline. A call past its deadline breaks the connection (a pipeline cannot
  skip a reply): every pending call fails with :class:`RespUnavailable` and the next call reconnects.
- **Cancellation** leaves the caller's future in the FIFO, so its reply is read and dropped and the
  replies of later calls stay in step.
- **The parser** resumes where the bytes ran out (partial arrays and bulk strings are kept, a partial
  line is not searched twice), so parsing is linear in the bytes however they are split; lengths are
  capped and the connection is closed on anything malformed.
- **Errors**: a Redis error reply raises :class:`RespError`; ``NOSCRIPT`` raises :class:`NoScript`;
  errors meaning "this server cannot serve now" (``BUSY``, ``LOADING``, ``READONLY``, ``OOM``,
  ``NOAUTH``, ``MASTERDOWN``) raise :class:`RespBusy`. :class:`RespUnavailable` is a
  ``ConnectionError``, so ``except OSError`` catches it. No message or repr holds the password.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["NoScript", "RespAddress", "RespBusy", "RespClient", "RespError", "RespParser", "RespUnavailable"]

MAX_BULK = 512 * 1024 * 1024
"""The longest bulk string accepted (Redis's own ``proto-max-bulk-len`` default)."""
MAX_ARRAY = 1024 * 1024
"""The most elements accepted in one array."""
MAX_LINE = 1024 * 1024
"""The longest simple string, error or length line accepted."""
MAX_DEPTH = 64
"""The deepest nesting of arrays accepted."""

_BUSY_CODES = frozenset({"BUSY", "LOADING", "READONLY", "OOM", "NOAUTH", "MASTERDOWN"})


class RespError(Exception):
    """Redis answered with an error reply; the message is Redis's own."""


class NoScript(RespError):
    """``EVALSHA`` of a script this Redis does not hold (restarted, or ``SCRIPT FLUSH``)."""


class RespBusy(RespError):
    """Redis cannot serve this now (busy script, loading, read-only replica, out of memory …)."""


class RespUnavailable(ConnectionError):
    """No answer: the connection was refused, lost, timed out, or broke on a malformed reply."""


class ProtocolError(ValueError):
    """The bytes from the server are not RESP2 this client accepts; the connection is closed."""


def error_reply(message: str) -> RespError:
    """The exception for an error reply, classified by its first word."""
    code = message.split(" ", 1)[0]
    if code == "NOSCRIPT":
        return NoScript(message)
    if code in _BUSY_CODES:
        return RespBusy(message)
    return RespError(message)


INCOMPLETE: Any = object()
"""What :meth:`RespParser.gets` returns while no whole reply is buffered."""


class RespParser:
    """RESP2 replies from a byte stream fed in pieces of any size.

    Bulk strings decode as UTF-8 ``str`` (undecodable bytes kept as surrogates), integers as ``int``,
    nulls as ``None``, arrays as ``list``; an error reply is a :class:`RespError` value (top level or
    nested). State survives between feeds: the arrays being filled, the length of a bulk string whose
    bytes are still arriving, and how far an unfinished line has been searched.
    """

    __slots__ = ("_buf", "_bulk", "_pos", "_scan", "_stack")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._scan = 0
        """Where to resume the search for the end of an unfinished line."""
        self._bulk = -1
        """Length of the bulk string whose bytes start at ``_pos``, or -1."""
        self._stack: list[tuple[list[Any], int]] = []
        """Arrays being filled, innermost last: (items so far, length)."""

    def feed(self, data: bytes) -> None:
        self._buf += data

    @property
    def buffered(self) -> int:
        """Bytes held, parsed or not (what :meth:`compact` has not dropped yet)."""
        return len(self._buf)

    @property
    def idle(self) -> bool:
        """No byte buffered that is not part of a returned reply."""
        return self._pos == len(self._buf) and not self._stack and self._bulk < 0

    def gets(self) -> Any:
        """The next whole reply, or :data:`INCOMPLETE`; :class:`ProtocolError` if malformed."""
        buf = self._buf
        pos = self._pos
        stack = self._stack
        while True:
            if self._bulk >= 0:
                end = pos + self._bulk
                if len(buf) < end + 2:
                    self._pos = pos
                    return INCOMPLETE
                if buf[end] != 13 or buf[end + 1] != 10:
                    raise ProtocolError("bulk string not followed by CRLF")
                value: Any = buf[pos:end].decode("utf-8", "surrogateescape")
                pos = end + 2
                self._bulk = -1
            else:
                end = buf.find(b"\r\n", self._scan if self._scan > pos else pos)
                if end < 0:
                    size = len(buf)
                    if size - pos > MAX_LINE:
                        raise ProtocolError("line too long")
                    self._scan = size - 1 if size > pos else pos
                    self._pos = pos
                    return INCOMPLETE
                kind = buf[pos]
                line = buf[pos + 1 : end]
                pos = end + 2
                if kind == 58:  # ":"
                    value = int(line)
                elif kind == 36:  # "$"
                    size = int(line)
                    if not -1 <= size <= MAX_BULK:
                        raise ProtocolError(f"bulk string of {size} bytes")
                    if size >= 0:
                        self._bulk = size
                        continue
                    value = None
                elif kind == 42:  # "*"
                    size = int(line)
                    if not -1 <= size <= MAX_ARRAY:
                        raise ProtocolError(f"array of {size} elements")
                    if size > 0:
                        if len(stack) >= MAX_DEPTH:
                            raise ProtocolError("arrays nested too deep")
                        stack.append(([], size))
                        continue
                    value = [] if size == 0 else None
                elif kind == 43:  # "+"
                    value = line.decode("utf-8", "surrogateescape")
                elif kind == 45:  # "-"
                    value = error_reply(line.decode("utf-8", "replace"))
                else:
                    raise ProtocolError(f"unknown reply type {bytes([kind])!r}")
            while stack:
                items, size = stack[-1]
                items.append(value)
                if len(items) < size:
                    break
                stack.pop()
                value = items
            else:
                self._pos = pos
                return value

    def compact(self) -> None:
        """Drop the bytes already parsed (once per read, so each byte moves at most about twice)."""
        pos = self._pos
        if pos:
            if pos == len(self._buf):
                self._buf.clear()
            else:
                del self._buf[:pos]
            self._scan = self._scan - pos if self._scan > pos else 0
            self._pos = 0


def encode(args: tuple[str | int | bytes, ...]) -> bytes:
    """One command as a RESP array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if type(arg) is str:
            data = arg.encode()
        elif type(arg) is int:
            data = b"%d" % arg
        elif isinstance(arg, bytes):
            data = arg
        else:
            raise TypeError(f"a Redis argument must be str, int or bytes, not {type(arg).__name__}")
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


@dataclass(frozen=True, slots=True)
class RespAddress:
    """Where a Redis listens and how to log in, parsed from a URL; the password is never shown."""

    host: str = "localhost"
    port: int = 6379
    path: str | None = None
    """A unix socket, instead of host and port."""
    tls: bool = False
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_url(cls, url: str) -> RespAddress:
        """``redis://[user:password@]host:port/db``, ``rediss://…`` (TLS) or ``unix:///path?db=N``."""
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"a Redis URL starts with redis://, rediss:// or unix://, not {parts.scheme}://")
        query = parse_qs(parts.query)
        unknown = set(query) - {"db"}
        if unknown:
            raise ValueError(f"unsupported Redis URL options: {', '.join(sorted(unknown))}")
        if "db" in query:
            db_text = query["db"][-1]
        else:
            db_text = "" if parts.scheme == "unix" else parts.path.strip("/")
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        if parts.scheme == "unix":
            if not parts.path:
                raise ValueError("a unix:// Redis URL needs a socket path")
            return cls(path=parts.path, db=int(db_text or 0), username=username, password=password)
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or 6379,
            tls=parts.scheme == "rediss",
            db=int(db_text or 0),
            username=username,
            password=password,
        )

    def __str__(self) -> str:
        where = f"unix:{self.path}" if self.path else f"{self.host}:{self.port}"
        return f"{where}/{self.db}"


class _Connection(asyncio.Protocol):
    """One connection: commands written in order, futures resolved in order."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout_s: float | None, where: str) -> None:
        self._loop = loop
        self._timeout_s = timeout_s
        self._where = where
        self._transport: asyncio.Transport | None = None
        self._parser = RespParser()
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self._unsent: list[bytes] = []
        """Commands to write at the end of this turn of the loop (their futures are in ``_waiting``)."""
        self._deadlines: deque[float] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self.open = False
        self.lost: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports don't subclass it
        self.open = True

    def send(self, payload: bytes) -> asyncio.Future[Any]:
        """Write one command (at once when nothing is in flight, else with the others sent in this
        turn of the loop: one system call for many) and return the future of its reply."""
        future = self._loop.create_future()
        if self._waiting:
            if not self._unsent:
                self._loop.call_soon(self._flush)
            self._unsent.append(payload)
        else:
            self._transport.write(payload)  # type: ignore[union-attr]  # open, so connected
        self._waiting.append(future)
        if self._timeout_s is not None:
            deadline = self._loop.time() + self._timeout_s
            self._deadlines.append(deadline)
            if self._timer is None:
                self._timer = self._loop.call_at(deadline, self._check_deadline)
        return future

    def _flush(self) -> None:
        if self._unsent and self.open:
            self._transport.write(b"".join(self._unsent))  # type: ignore[union-attr]
        self._unsent.clear()

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        parser.feed(data)
        waiting = self._waiting
        deadlines = self._deadlines
        try:
            while waiting:
                value = parser.gets()
                if value is INCOMPLETE:
                    break
                future = waiting.popleft()
                if deadlines:
                    deadlines.popleft()
                if future.done():  # its caller was cancelled: the reply is dropped
                    continue
                if isinstance(value, RespError):
                    future.set_exception(value)
                else:
                    future.set_result(value)
            else:
                if not parser.idle:
                    raise ProtocolError("a reply nobody asked for")
        except ValueError as exc:  # ProtocolError, or a length that is not a number
            self.close(f"malformed reply from Redis at {self._where}: {exc}")
            return
        parser.compact()

    def eof_received(self) -> bool:
        self.close(f"Redis at {self._where} closed the connection")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.close(f"connection to Redis at {self._where} lost")
        if not self.lost.done():
            self.lost.set_result(None)

    def _check_deadline(self) -> None:
        self._timer = None
        if not self._deadlines:
            return
        deadline = self._deadlines[0]
        if self._loop.time() >= deadline:
            self.close(f"no reply from Redis at {self._where} within {self._timeout_s}s")
        else:
            self._timer = self._loop.call_at(deadline, self._check_deadline)

    def close(self, reason: str) -> None:
        """Break the connection: every pending call fails with :class:`RespUnavailable`."""
        self.open = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._transport is not None and not self._transport.is_closing():
            self._transport.abort()
        waiting, self._waiting = self._waiting, deque()
        self._deadlines.clear()
        self._unsent.clear()
        for future in waiting:
            if not future.done():
                future.set_exception(RespUnavailable(reason))


class RespClient:
    """Redis over one pipelined connection, opened on first use and again after it is lost."""

    def __init__(
        self,
        address: RespAddress,
        *,
        connect_timeout_s: float = 0.5,
        timeout_s: float | None = 0.25,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """``ssl_context`` for ``rediss://``: the default context (system CAs, hostname checked) if None."""
        self.address = address
        self._connect_timeout_s = connect_timeout_s
        self._timeout_s = timeout_s
        self._conn: _Connection | None = None
        self._connecting: asyncio.Task[_Connection] | None = None
        self._ssl = ssl_context

    @classmethod
    def from_url(
        cls, url: str, *, connect_timeout_s: float = 0.5, timeout_s: float | None = 0.25
    ) -> RespClient:
        return cls(RespAddress.from_url(url), connect_timeout_s=connect_timeout_s, timeout_s=timeout_s)

    def __repr__(self) -> str:
        return f"RespClient({self.address})"

    async def call(self, *args: str | int | bytes) -> Any:
        """Send one command and wait for its reply."""
        conn = self._conn
        if conn is None or not conn.open:
            conn = await self._connected()
        return await conn.send(encode(args))

    async def ping(self) -> str:
        return str(await self.call("PING"))

    async def script_load(self, source: str) -> str:
        return str(await self.call("SCRIPT", "LOAD", source))

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: str | int | bytes) -> Any:
        # the body of call(), inlined: the hot path saves a coroutine
        conn = self._conn
        if conn is None or not conn.open:
            conn = await self._connected()
        return await conn.send(encode(("EVALSHA", sha, numkeys, *keys_and_args)))

    async def aclose(self) -> None:
        """Close the connection (pending calls fail); a later call opens a new one."""
        task, self._connecting = self._connecting, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close("client closed")
            await conn.lost

    async def _connected(self) -> _Connection:
        """The open connection; one attempt at a time, shared by every caller that waits for it."""
        task = self._connecting
        if task is None:
            task = asyncio.get_running_loop().create_task(self._open(), name="interlock-resp-connect")
            task.add_done_callback(self._connect_done)
            self._connecting = task
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and current is not None and not current.cancelling():
                raise RespUnavailable("the client was closed while connecting") from None
            raise

    def _connect_done(self, task: asyncio.Task[_Connection]) -> None:
        if self._connecting is task:
            self._connecting = None
        if not task.cancelled() and task.exception() is None:
            self._conn = task.result()

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        address = self.address
        where = str(address)

        def protocol() -> _Connection:
            return _Connection(loop, self._timeout_s, where)

        try:
            async with asyncio.timeout(self._connect_timeout_s):
                if address.path is not None:
                    _, conn = await loop.create_unix_connection(protocol, address.path)
                elif address.tls:
                    if self._ssl is None:
                        self._ssl = ssl.create_default_context()
                    _, conn = await loop.create_connection(
                        protocol, address.host, address.port, ssl=self._ssl, server_hostname=address.host
                    )
                else:
                    _, conn = await loop.create_connection(protocol, address.host, address.port)
                try:
                    await self._handshake(conn)
                except BaseException:
                    conn.close("handshake failed")
                    raise
        except RespUnavailable:
            raise
        except TimeoutError:
            raise RespUnavailable(f"connecting to Redis at {where} timed out") from None
        except OSError as exc:
            raise RespUnavailable(f"cannot connect to Redis at {where}: {exc.strerror or exc}") from exc
        except RespError as exc:
            raise RespUnavailable(f"Redis at {where} refused the connection: {exc}") from exc
        return conn

    async def _handshake(self, conn: _Connection) -> None:
        """Log in and pick the database, one command at a time (a failed ``AUTH`` ends it)."""
        address = self.address
        if address.password is not None:
            login = (address.username, address.password) if address.username else (address.password,)
            await conn.send(encode(("AUTH", *login)))
        if address.db:
            await conn.send(encode(("SELECT", address.db)))
