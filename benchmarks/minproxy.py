"""The floor for overhead.py: a minimal HTTP/1.1 pass-through proxy on uvloop, no framework.

It accepts keep-alive connections, and for each request takes a keep-alive connection to the upstream
from a pool, forwards the request's bytes unchanged as they arrive, and relays the response's bytes
unchanged as they arrive (Content-Length bodies and chunked/SSE streams alike). httptools parses both
directions, but only to find where each message ends, so that the upstream connection can go back
to the pool: that much any HTTP proxy must do. Nothing else: no routing, auth, headers, logging, or
flow control (the benchmark's bodies are small), and no HEAD requests or upgrades.

Run: ``python benchmarks/minproxy.py PORT UPSTREAM_PORT [HOST]``.
"""

from __future__ import annotations

import asyncio
import sys
from typing import cast

import httptools
import uvloop


class Upstream(asyncio.Protocol):
    """One pooled connection to the upstream; relays each response to the downstream it serves."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.down: Downstream | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it

    def data_received(self, data: bytes) -> None:
        if self.down is not None and self.down.transport is not None:
            self.down.transport.write(data)  # relayed before parsing: a stream's events leave at once
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._drop()

    def on_message_complete(self) -> None:
        if self.down is not None:
            self.down.response_done(self, self._parser.should_keep_alive())

    def connection_lost(self, exc: Exception | None) -> None:
        self._pool.forget(self)
        if self.down is not None:
            self.down.upstream_lost()

    def _drop(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Downstream(asyncio.Protocol):
    """One client connection. Holds an upstream connection from a request's first byte until every
    request begun on it has been answered, so pipelined requests keep their order."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self._up: Upstream | None = None
        self._waiting: list[bytes] | None = None
        """Bytes that arrived while an upstream connection was being opened."""
        self._begun = 0
        self._ended = 0
        self._answered = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._close()
            return
        if self._up is not None and self._up.transport is not None:
            self._up.transport.write(data)
        elif self._waiting is not None:
            self._waiting.append(data)
        else:
            self._bind(data)

    def _bind(self, data: bytes) -> None:
        up = self._pool.take()
        if up is not None:
            self._attach(up, [data])
        else:
            self._waiting = [data]
            asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        try:
            up = await self._pool.open()
        except OSError:
            self._close()
            return
        waiting, self._waiting = self._waiting or [], None
        self._attach(up, waiting)

    def _attach(self, up: Upstream, data: list[bytes]) -> None:
        if self.transport is None or self.transport.is_closing():
            self._pool.give(up)
            return
        self._up, up.down = up, self
        assert up.transport is not None
        up.transport.writelines(data)

    def on_message_begin(self) -> None:
        self._begun += 1

    def on_message_complete(self) -> None:
        self._ended += 1

    def response_done(self, up: Upstream, keep_alive: bool) -> None:
        self._answered += 1
        if self._answered == self._ended == self._begun:
            self._up, up.down = None, None
            if keep_alive:
                self._pool.give(up)
            else:
                up._drop()

    def upstream_lost(self) -> None:
        self._up = None
        self._close()

    def connection_lost(self, exc: Exception | None) -> None:
        up, self._up = self._up, None
        if up is not None:  # an answer was still due: the connection cannot be reused
            up.down = None
            up._drop()

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Pool:
    """Idle keep-alive connections to the upstream, newest first."""

    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._idle: list[Upstream] = []

    def take(self) -> Upstream | None:
        return self._idle.pop() if self._idle else None

    def give(self, up: Upstream) -> None:
        self._idle.append(up)

    def forget(self, up: Upstream) -> None:
        if up in self._idle:
            self._idle.remove(up)

    async def open(self) -> Upstream:
        loop = asyncio.get_running_loop()
        _, up = await loop.create_connection(lambda: Upstream(self), self._host, self._port)
        return up


async def serve(port: int, upstream_port: int, host: str = "127.0.0.1") -> None:
    loop = asyncio.get_running_loop()
    pool = Pool(host, upstream_port)
    server = await loop.create_server(lambda: Downstream(pool), host, port, backlog=2048)
    print(f"minproxy listening on http://{host}:{port}, upstream port {upstream_port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1]), int(sys.argv[2]), *sys.argv[3:4]))
