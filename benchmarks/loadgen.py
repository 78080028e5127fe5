"""A small, fast HTTP/1.1 load generator for the benchmarks: raw asyncio protocols and httptools.

Why not aiohttp or httpx as the load generator: on a 2-core machine the load generator shares a core
with the upstream simulator, and every microsecond it spends per request is noise in the latency it
measures and a ceiling on the rate it can offer. A protocol that sends pre-built request bytes over
keep-alive connections and parses replies with httptools costs a few tens of µs per request
(aiohttp's client costs several times that; see benchmarks/components.py).

Open-loop: requests are sent on a fixed clock whatever the answers do, and latency is measured from
the *scheduled* send time, so a server that stalls is charged for the requests that queued behind
the stall (no coordinated omission). How late the generator itself sent is recorded as ``lag``.
"""

from __future__ import annotations

import asyncio
import gc
import math
import re
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import cast

import httptools

__all__ = [
    "Client",
    "Result",
    "Samples",
    "Target",
    "closed_loop",
    "open_loop",
    "open_loop_mix",
    "percentile",
]

_clock = time.perf_counter

# The first streamed token: a delta whose content is a non-empty string.
_FIRST_CONTENT = re.compile(rb'"content":\s*"[^"]')


@dataclass(frozen=True, slots=True)
class Target:
    """Where to send, and the exact bytes of the request (built once)."""

    name: str
    host: str
    port: int
    request: bytes
    stream: bool = False

    @classmethod
    def post_json(
        cls,
        name: str,
        host: str,
        port: int,
        path: str,
        body: bytes,
        *,
        headers: Sequence[tuple[str, str]] = (),
        stream: bool = False,
    ) -> Target:
        lines = [
            f"POST {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            *(f"{k}: {v}" for k, v in headers),
        ]
        return cls(name, host, port, ("\r\n".join(lines) + "\r\n\r\n").encode() + body, stream)


@dataclass(slots=True)
class Result:
    """One finished request. Times are ``time.perf_counter()`` seconds: uvloop's ``loop.time()``
    ticks in whole milliseconds, too coarse for sub-millisecond differences."""

    scheduled: float
    sent: float
    first_token: float | None
    done: float
    status: int
    overhead_ms: float | None
    body_bytes: int


Callback = Callable[[Result], None]


class _Connection(asyncio.Protocol):
    """One keep-alive connection; carries one request at a time."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._callback: Callback | None = None
        self._scheduled = 0.0
        self._sent = 0.0
        self._first: float | None = None
        self._overhead: float | None = None
        self._scan = b""
        self._size = 0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._fail()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._client._lost(self)
        self._fail()

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"x-interlock-overhead-ms":
            self._overhead = float(value)

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._first is None and self._client.target.stream:
            self._scan = self._scan[-16:] + body
            if _FIRST_CONTENT.search(self._scan):
                self._first = _clock()

    def on_message_complete(self) -> None:
        callback, self._callback = self._callback, None
        if callback is None:
            return
        now = _clock()
        status = self._parser.get_status_code()
        first = self._first if self._client.target.stream else now
        result = Result(self._scheduled, self._sent, first, now, status, self._overhead, self._size)
        if self._parser.should_keep_alive():
            self._client._release(self)
        elif self.transport is not None:
            self.transport.close()
        callback(result)

    # used by Client
    def send(self, scheduled: float, callback: Callback) -> None:
        assert self.transport is not None
        self._callback = callback
        self._scheduled = scheduled
        self._first = None
        self._overhead = None
        self._scan = b""
        self._size = 0
        self._sent = _clock()
        self.transport.write(self._client.target.request)

    def _fail(self) -> None:
        callback, self._callback = self._callback, None
        if callback is not None:
            now = _clock()
            callback(Result(self._scheduled, self._sent, None, now, 0, None, 0))


class Client:
    """A pool of keep-alive connections to one target; requests wait for a free connection."""

    def __init__(self, target: Target, *, max_connections: int = 512) -> None:
        self.target = target
        self.max_connections = max_connections
        self._loop = asyncio.get_running_loop()
        self._idle: list[_Connection] = []
        self._all: set[_Connection] = set()
        self._connecting = 0
        self._waiting: deque[tuple[float, Callback]] = deque()

    async def warm(self, connections: int) -> None:
        """Open ``connections`` connections ahead of time."""
        new = await asyncio.gather(*(self._open() for _ in range(connections - len(self._all))))
        self._idle.extend(new)

    async def _open(self) -> _Connection:
        self._connecting += 1
        try:
            _, protocol = await self._loop.create_connection(
                lambda: _Connection(self), self.target.host, self.target.port
            )
        finally:
            self._connecting -= 1
        self._all.add(protocol)
        return protocol

    def submit(self, scheduled: float, callback: Callback) -> None:
        """Send one request now (or as soon as a connection is free); ``callback`` gets the result."""
        if self._idle:
            self._idle.pop().send(scheduled, callback)
            return
        self._waiting.append((scheduled, callback))
        if len(self._all) + self._connecting < self.max_connections:
            self._loop.create_task(self._grow())

    async def _grow(self) -> None:
        try:
            connection = await self._open()
        except OSError:
            return
        self._release(connection)

    def _release(self, connection: _Connection) -> None:
        if connection.closed:
            return
        if self._waiting:
            scheduled, callback = self._waiting.popleft()
            connection.send(scheduled, callback)
        else:
            self._idle.append(connection)

    def _lost(self, connection: _Connection) -> None:
        self._all.discard(connection)
        if connection in self._idle:
            self._idle.remove(connection)

    def close(self) -> None:
        for connection in list(self._all):
            if connection.transport is not None:
                connection.transport.close()
        self._all.clear()
        self._idle.clear()


@dataclass(slots=True)
class Samples:
    """What one run against one target measured. Latencies in milliseconds."""

    latency: list[float] = field(default_factory=list)
    ttft: list[float] = field(default_factory=list)
    lag: list[float] = field(default_factory=list)
    overhead: list[float] = field(default_factory=list)
    errors: int = 0
    rate_limited: int = 0
    """Of ``errors``, the answers with status 429."""
    elapsed_s: float = 0.0

    def add(self, result: Result) -> None:
        if result.status != 200:
            self.errors += 1
            self.rate_limited += result.status == 429
            return
        self.latency.append((result.done - result.scheduled) * 1000.0)
        self.lag.append((result.sent - result.scheduled) * 1000.0)
        if result.first_token is not None:
            self.ttft.append((result.first_token - result.scheduled) * 1000.0)
        if result.overhead_ms is not None:
            self.overhead.append(result.overhead_ms)

    @property
    def count(self) -> int:
        return len(self.latency) + self.errors

    @property
    def achieved_rps(self) -> float:
        return self.count / self.elapsed_s if self.elapsed_s else 0.0


async def open_loop(client: Client, rate: float, duration_s: float, *, drain_s: float = 5.0) -> Samples:
    """Send ``rate`` requests per second for ``duration_s`` on a fixed schedule; wait for answers.

    Requests not answered ``drain_s`` after the last send count as errors.
    """
    return (await open_loop_mix([client], rate, duration_s, drain_s=drain_s))[0]


async def open_loop_mix(
    clients: Sequence[Client], rate: float, duration_s: float, *, drain_s: float = 5.0
) -> list[Samples]:
    """Like :func:`open_loop`, request ``i`` going to ``clients[i % len(clients)]``: a traffic mix
    in a fixed rotation. One :class:`Samples` per client, in order."""
    loop = asyncio.get_running_loop()
    per_client = [Samples() for _ in clients]
    total = max(1, round(rate * duration_s))
    interval = 1.0 / rate
    outstanding = [0] * len(clients)
    finished = loop.create_future()
    sent_all = False

    def on_result_for(slot: int) -> Callback:
        def on_result(result: Result) -> None:
            outstanding[slot] -= 1
            per_client[slot].add(result)
            if sent_all and not any(outstanding) and not finished.done():
                finished.set_result(None)

        return on_result

    callbacks = [on_result_for(slot) for slot in range(len(clients))]
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = _clock() + 0.005
        index = 0
        while index < total:
            now = _clock()
            # Send everything that is due (the timer can wake a little late): the schedule, not the
            # timer, decides when each request counts from.
            while index < total and start + index * interval <= now:
                slot = index % len(clients)
                outstanding[slot] += 1
                clients[slot].submit(start + index * interval, callbacks[slot])
                index += 1
            if index < total:
                await asyncio.sleep(max(0.0, start + index * interval - _clock()))
        sent_all = True
        if any(outstanding):
            try:
                await asyncio.wait_for(asyncio.shield(finished), drain_s)
            except TimeoutError:
                for slot, left in enumerate(outstanding):
                    per_client[slot].errors += left
        elapsed = _clock() - start
        for samples in per_client:
            samples.elapsed_s = elapsed
    finally:
        if gc_was_enabled:
            gc.enable()
    return per_client


async def closed_loop(
    client: Client, requests: int, concurrency: int, on_done: Callable[[], None] | None = None
) -> Samples:
    """Send ``requests`` requests from ``concurrency`` workers, each waiting for its answer."""
    loop = asyncio.get_running_loop()
    samples = Samples()
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            future: asyncio.Future[Result] = loop.create_future()
            client.submit(_clock(), future.set_result)
            samples.add(await future)
            if on_done is not None:
                on_done()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    samples.elapsed_s = time.perf_counter() - start
    return samples


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0 to 100) with linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
