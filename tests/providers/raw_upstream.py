"""Small upstream servers that answer with exact bytes, over real loopback sockets, for the upstream
client's tests."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

from interlock.providers.http import HttpClient, Timeouts

__all__ = [
    "ForwardProxy",
    "Upstream",
    "UpstreamHandler",
    "chunk",
    "client",
    "forward_proxy",
    "json_reply",
    "keep_answering",
    "reply",
    "sse_head",
    "tls_upstream",
    "upstream",
]

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Upstream:
    """A TCP server whose handler writes raw bytes; counts connections and keeps the requests."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.closed = asyncio.Event()
        self.port = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self.closed.set()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        request = head + (await reader.readexactly(length) if length else b"")
        self.requests.append(request)
        return request


UpstreamHandler = Callable[[Upstream, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def upstream(
    handler: UpstreamHandler, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[Upstream]:
    box = Upstream(lambda r, w: handler(box, r, w))
    server = await asyncio.start_server(box._serve, host, port)
    box.port = server.sockets[0].getsockname()[1]
    try:
        yield box
    finally:
        server.close()


def client(port: int, **timeouts: float) -> HttpClient:
    return HttpClient(
        "up", f"http://127.0.0.1:{port}/v1", {"Authorization": "Bearer sk-up"}, Timeouts(**timeouts)
    )


def reply(status: str, headers: dict[str, str], body: bytes) -> bytes:
    head = f"HTTP/1.1 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode() + body


def json_reply(body: bytes, **extra: str) -> bytes:
    return reply(
        "200 OK", {"Content-Type": "application/json", "Content-Length": str(len(body)), **extra}, body
    )


async def keep_answering(box: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        await box.read_request(reader)
        writer.write(json_reply(b'{"ok": true}'))
        await writer.drain()


def sse_head() -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@asynccontextmanager
async def tls_upstream(certificate: tuple[Path, Path], body: bytes) -> AsyncIterator[int]:
    """An https upstream with a self-signed certificate, answering every request with ``body``."""
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(json_reply(body))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_tls)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


class ForwardProxy:
    """A small HTTP proxy: CONNECT opens a tunnel, an absolute-form request is relayed to its host."""

    def __init__(self, refuse: bool = False) -> None:
        self.heads: list[bytes] = []
        self.refuse = refuse

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.heads.append(head)
            method, target = head.split(b"\r\n", 1)[0].split()[:2]
            if method == b"CONNECT":
                if self.refuse:
                    writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                    return
                host, port = target.decode().rsplit(":", 1)
                up_reader, up_writer = await asyncio.open_connection(resolve(host), int(port))
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                url = urlsplit(target.decode())
                assert url.hostname is not None and url.port is not None
                up_reader, up_writer = await asyncio.open_connection(resolve(url.hostname), url.port)
                up_writer.write(head)
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


def resolve(host: str) -> str:
    """The proxy's DNS: names under ``.test`` are this machine."""
    return "127.0.0.1" if host.endswith(".test") else host


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


@asynccontextmanager
async def forward_proxy(refuse: bool = False) -> AsyncIterator[tuple[ForwardProxy, int]]:
    proxy = ForwardProxy(refuse)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    try:
        yield proxy, server.sockets[0].getsockname()[1]
    finally:
        server.close()
