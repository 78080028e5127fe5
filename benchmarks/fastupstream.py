"""A minimal, fast HTTP/1.1 upstream for the client benchmarks: raw asyncio protocol + httptools on uvloop.

``POST /chat`` answers a ~1 KB chat completion; ``POST /stream`` answers 50 server-sent events, each
in its own chunk of a chunked body (sent in one write, as an engine would when it is ahead of the
reader). It does as little as it can, so that what the benchmark measures is the client.

Run: ``python benchmarks/fastupstream.py PORT``.
"""

from __future__ import annotations

import asyncio
import sys
from typing import cast

import httptools
import uvloop

from payloads import CHAT_REPLY, STREAM_BODY

_CHAT = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
    + str(len(CHAT_REPLY)).encode()
    + b"\r\n\r\n"
    + CHAT_REPLY
)
_EVENTS = [event + b"\n\n" for event in STREAM_BODY.split(b"\n\n") if event]
_STREAM = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    + b"".join(f"{len(e):x}\r\n".encode() + e + b"\r\n" for e in _EVENTS)
    + b"0\r\n\r\n"
)
_OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"


class _Upstream(asyncio.Protocol):
    def __init__(self) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            if self._transport is not None:
                self._transport.close()

    def on_url(self, url: bytes) -> None:
        self._url = url

    def on_message_complete(self) -> None:
        assert self._transport is not None
        if self._url.endswith(b"/chat"):
            self._transport.write(_CHAT)
        elif self._url.endswith(b"/stream"):
            self._transport.write(_STREAM)
        elif self._url == b"/health":
            self._transport.write(_OK)
        else:
            self._transport.write(_NOT_FOUND)


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Upstream, host, port, backlog=2048)
    print(f"fastupstream listening on http://{host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(serve("127.0.0.1", int(sys.argv[1])))
