"""Opening connections: IPv6 upstreams, names that resolve to several addresses, and the connector
seam that lets another transport (here an in-memory one) replace sockets."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import pytest

from interlock.core.errors import UpstreamConnectError
from interlock.providers.h1 import Origin
from interlock.providers.http import HttpClient, Timeouts
from interlock.providers.openai import OpenAIProvider
from interlock.server.thread import free_port
from tests.providers.raw_upstream import json_reply, keep_answering, sse_head, upstream


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not has_ipv6_loopback(), reason="this machine has no IPv6 loopback")


@pytest.fixture(autouse=True)
def no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)


@needs_ipv6
async def test_an_ipv6_base_url() -> None:
    async with upstream(keep_answering, host="::1") as up:
        http = HttpClient("up", f"http://[::1]:{up.port}/v1", {}, Timeouts())
        parsed, _ = await http.request_json("GET", "/models")
        await http.aclose()
    assert parsed == {"ok": True}
    assert b"Host: [::1]:%d\r\n" % up.port in up.requests[0]


@contextmanager
def resolving(monkeypatch: pytest.MonkeyPatch, name: str, addresses: list[str]) -> Iterator[None]:
    """Make ``name`` resolve to ``addresses``, in that order: the one thing faked here is DNS, as no
    name on this machine resolves to both loopback addresses."""
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo

    async def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host != name:
            return await real(host, port, *args, **kwargs)
        found = []
        for address in addresses:
            found.extend(await real(address, port, *args, **kwargs))
        return found

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    yield


@needs_ipv6
@pytest.mark.parametrize("listening", ["127.0.0.1", "::1"])
async def test_a_dual_stack_name_connects_to_whichever_address_listens(
    monkeypatch: pytest.MonkeyPatch, listening: str
) -> None:
    async with upstream(keep_answering, host=listening) as up:
        with resolving(monkeypatch, "dual.test", ["::1", "127.0.0.1"]):
            http = HttpClient("up", f"http://dual.test:{up.port}/v1", {}, Timeouts())
            parsed, _ = await http.request_json("GET", "/models")
            await http.aclose()
    assert parsed == {"ok": True}
    assert b"Host: dual.test:%d\r\n" % up.port in up.requests[0]


@needs_ipv6
async def test_a_dual_stack_name_where_nothing_listens_is_a_connect_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = free_port()
    with resolving(monkeypatch, "dual.test", ["::1", "127.0.0.1"]):
        http = HttpClient("up", f"http://dual.test:{port}/v1", {}, Timeouts())
        with pytest.raises(UpstreamConnectError, match="cannot connect to upstream 'up'"):
            await http.request_json("GET", "/models")
        await http.aclose()


@contextmanager
def unanswering_ipv6_port() -> Iterator[int]:
    """A port on ::1 where a connection attempt hangs unanswered, as on a host whose IPv6 route is
    broken: its listen backlog is full, so the kernel drops new connection requests."""
    listener = socket.socket(socket.AF_INET6)
    held: list[socket.socket] = []
    try:
        listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        listener.bind(("::1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(2):  # fill the backlog
            filler = socket.socket(socket.AF_INET6)
            filler.setblocking(False)
            held.append(filler)
            with suppress(BlockingIOError):  # the handshake completes (or hangs) in the kernel
                filler.connect(("::1", port))
        yield port
    finally:
        for sock in held:
            sock.close()
        listener.close()


@needs_ipv6
async def test_an_address_that_never_answers_does_not_use_up_the_connect_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with unanswering_ipv6_port() as port:
        try:
            server = await asyncio.start_server(keep_answering_plain, "127.0.0.1", port)
        except OSError:
            pytest.skip("the IPv4 twin of the port is taken")
        try:
            with resolving(monkeypatch, "dual.test", ["::1", "127.0.0.1"]):
                # without trying the next address alongside, this fails after the whole 30 s
                http = HttpClient("up", f"http://dual.test:{port}/v1", {}, Timeouts(connect_s=30))
                parsed, _ = await http.request_json("GET", "/models")
                await http.aclose()
        finally:
            server.close()
    assert parsed == {"ok": True}


async def keep_answering_plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(json_reply(b'{"ok": true}'))
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


class MemoryTransport(asyncio.Transport):
    """One end of an in-memory byte stream: what the client writes goes to ``answer``, whose bytes
    come back to the client's protocol on the next turn of the loop."""

    def __init__(self, protocol: asyncio.Protocol, answer: Callable[[bytes], bytes]) -> None:
        super().__init__()
        self._protocol = protocol
        self._answer = answer
        self._received = b""
        self._closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._received += bytes(data)
        head, sep, rest = self._received.partition(b"\r\n\r\n")
        if not sep:
            return
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            ),
            0,
        )
        if len(rest) < length:
            return
        self._received = rest[length:]
        answer = self._answer(head + sep + rest[:length])
        asyncio.get_running_loop().call_soon(self._deliver, answer)

    def _deliver(self, data: bytes) -> None:
        if not self._closed:
            self._protocol.data_received(data)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            asyncio.get_running_loop().call_soon(self._protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def is_closing(self) -> bool:
        return self._closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class MemoryConnector:
    """A connector without sockets: every connection is answered by ``answer``."""

    def __init__(self, answer: Callable[[bytes], bytes]) -> None:
        self.answer = answer
        self.opened: list[Origin] = []
        self.requests: list[bytes] = []

    async def connect(self, origin: Origin, protocol: asyncio.Protocol) -> None:
        self.opened.append(origin)
        protocol.connection_made(MemoryTransport(protocol, self._record))

    def _record(self, request: bytes) -> bytes:
        self.requests.append(request)
        return self.answer(request)


async def test_an_injected_transport_replaces_the_network() -> None:
    def answer(request: bytes) -> bytes:
        if request.startswith(b"GET"):
            return json_reply(b'{"data": [{"id": "m1"}, {"id": "m2"}]}')
        events = b'data: {"choices": [{"delta": {"content": "hi"}}]}\n\ndata: [DONE]\n\n'
        return sse_head() + b"%x\r\n%s\r\n0\r\n\r\n" % (len(events), events)

    # a name that resolves nowhere and https with no certificate: only the injected transport is used
    memory = MemoryConnector(answer)
    provider = OpenAIProvider("mem", "https://nowhere.invalid/v1", api_key="sk-mem", transport=memory)
    assert await provider.list_models() == ["m1", "m2"]
    batches = [batch async for batch in provider.chat_stream({"model": "m1", "messages": []})]
    await provider.aclose()

    assert batches == [[{"choices": [{"delta": {"content": "hi"}}]}]]
    assert memory.opened == [Origin("https", "nowhere.invalid", 443, "/v1")]  # one pooled connection
    assert memory.requests[0].startswith(b"GET /v1/models HTTP/1.1\r\nHost: nowhere.invalid\r\n")
    assert b"Authorization: Bearer sk-mem\r\n" in memory.requests[1]


async def test_a_transport_that_fails_to_connect_is_a_connect_error() -> None:
    class Refusing:
        async def connect(self, origin: Origin, protocol: asyncio.Protocol) -> None:
            raise ConnectionRefusedError("no")

    http = HttpClient("up", "http://nowhere.invalid/v1", {}, Timeouts(), transport=Refusing())
    with pytest.raises(UpstreamConnectError, match="cannot connect to upstream 'up'"):
        await http.request_json("GET", "/models")
    await http.aclose()
