"""The upstream HTTP client over real loopback sockets, against small servers that answer with exact
bytes: pooling, body framings, content encodings, back-pressure, timeouts, cancellation and every
way a response can be broken."""

from __future__ import annotations

import asyncio
import base64
import gzip
import ssl
import subprocess
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from interlock.errors import (
    UpstreamBadResponse,
    UpstreamConnectError,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamStreamBroken,
    UpstreamTimeout,
)
from interlock.providers.http import HttpClient, Timeouts
from interlock.providers.proxy import Proxy, proxy_for
from interlock.providers.sse import SseParser, SseTooLarge
from interlock.server.thread import free_port

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


@asynccontextmanager
async def upstream(
    handler: Callable[[Upstream, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[Upstream]:
    box = Upstream(lambda r, w: handler(box, r, w))
    server = await asyncio.start_server(box._serve, "127.0.0.1", 0)
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


async def test_request_bytes_and_connection_reuse() -> None:
    async with upstream(keep_answering) as up:
        http = client(up.port)
        for _ in range(5):
            parsed, raw = await http.request_json(
                "POST", "/chat/completions", b'{"a":1}', {"traceparent": "00-x"}
            )
            assert parsed == {"ok": True} and raw == b'{"ok": true}'
        await http.aclose()
    assert up.connections == 1
    first = up.requests[0]
    assert first.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    for line in (b"Host: 127.0.0.1:%d" % up.port, b"Authorization: Bearer sk-up", b"traceparent: 00-x"):
        assert line in first
    assert first.endswith(b'Content-Length: 7\r\n\r\n{"a":1}')


async def test_a_header_that_could_split_the_request_is_dropped() -> None:
    async with upstream(keep_answering) as up:
        http = client(up.port)
        await http.request_json("GET", "/models", None, {"traceparent": "x\r\nEvil: 1", "tracestate": "ok"})
        await http.aclose()
    assert b"Evil" not in up.requests[0] and b"tracestate: ok" in up.requests[0]
    with pytest.raises(ValueError, match="header"):
        HttpClient("up", "http://127.0.0.1:1", {"X-Bad": "a\nb"}, Timeouts())


async def test_idle_connections_expire_after_keepalive() -> None:
    async with upstream(keep_answering) as up:
        http = client(up.port, keepalive_s=0.05)
        await http.request_json("GET", "/models")
        await asyncio.sleep(0.15)
        await http.request_json("GET", "/models")
        await http.aclose()
    assert up.connections == 2


async def test_connection_close_header_is_honoured() -> None:
    async def once(box: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await box.read_request(reader)
        writer.write(json_reply(b"{}", Connection="close"))

    async with upstream(once) as up:
        http = client(up.port)
        await http.request_json("GET", "/models")
        await http.request_json("GET", "/models")
        await http.aclose()
    assert up.connections == 2


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate", "chunked", "close-delimited"])
async def test_body_framings_and_encodings(encoding: str) -> None:
    body = b'{"text": "' + b"token " * 2000 + b'"}'

    async def answer(box: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await box.read_request(reader)
        headers = {"Content-Type": "application/json"}
        payload = body
        if encoding == "gzip":
            payload, headers["Content-Encoding"] = gzip.compress(body), "gzip"
        elif encoding == "deflate":
            payload, headers["Content-Encoding"] = zlib.compress(body), "deflate"
        elif encoding == "raw-deflate":
            z = zlib.compressobj(wbits=-15)
            payload, headers["Content-Encoding"] = z.compress(body) + z.flush(), "deflate"
        if encoding == "chunked":
            headers["Transfer-Encoding"] = "chunked"
            pieces = [payload[i : i + 1000] for i in range(0, len(payload), 1000)]
            payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
        elif encoding == "close-delimited":
            headers["Connection"] = "close"
        else:
            headers["Content-Length"] = str(len(payload))
        writer.write(reply("200 OK", headers, payload))
        await writer.drain()
        if encoding == "close-delimited":
            writer.close()
        else:
            await reader.read()

    async with upstream(answer) as up:
        http = client(up.port)
        parsed, raw = await http.request_json("POST", "/x", b"{}")
        await http.aclose()
    assert raw == body and parsed["text"].startswith("token token")


async def test_unsupported_encoding_is_a_bad_response() -> None:
    async def answer(box: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await box.read_request(reader)
        writer.write(json_reply(b"xx", **{"Content-Encoding": "br"}))
        await reader.read()

    async with upstream(answer) as up:
        http = client(up.port)
        with pytest.raises(UpstreamBadResponse, match="content encoding"):
            await http.request_json("POST", "/x", b"{}")
        await http.aclose()


@pytest.mark.parametrize(
    ("answer_bytes", "error", "words"),
    [
        (b"", UpstreamError, "closed the connection without answering"),
        (b"SMTP ready\r\n\r\n", UpstreamBadResponse, "invalid HTTP response"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
            UpstreamBadResponse,
            "broken response body",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nhi",
            UpstreamBadResponse,
            "text/html",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 3\r\n\r\n{x}",
            UpstreamBadResponse,
            "invalid JSON",
        ),
        (
            b"HTTP/1.1 200 OK\r\nX-Padding: " + b"x" * 70_000 + b"\r\n",
            UpstreamBadResponse,
            "larger than 64 KiB",
        ),
    ],
    ids=["nothing", "not-http", "truncated", "html", "bad-json", "endless-headers"],
)
async def test_broken_answers(answer_bytes: bytes, error: type[Exception], words: str) -> None:
    async def answer(box: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await box.read_request(reader)
        writer.write(answer_bytes)
        await writer.drain()

    async with upstream(answer) as up:
        http = client(up.port)
        with pytest.raises(error, match=words):
            await http.request_json("POST", "/x", b"{}")
        await http.aclose()


async def test_error_status_carries_retry_after_and_an_interim_response_is_skipped() -> None:
    async def answer(box: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await box.read_request(reader)
        body = b'{"error": {"message": "slow down"}}'
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        writer.write(
            reply("429 Too Many Requests", {"Retry-After": "7", "Content-Length": str(len(body))}, body)
        )
        await reader.read()

    async with upstream(answer) as up:
        http = client(up.port)
        with pytest.raises(UpstreamRateLimited, match="slow down") as caught:
            await http.request_json("POST", "/x", b"{}")
        await http.aclose()
    assert caught.value.retry_after == 7.0


async def test_connect_refused_and_read_timeout() -> None:
    http = client(free_port())
    with pytest.raises(UpstreamConnectError):
        await http.request_json("GET", "/models")

    async def silent(box: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await box.read_request(reader)
        await asyncio.sleep(5)

    async with upstream(silent) as up:
        http = client(up.port, read_s=0.1)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(UpstreamTimeout):
            await http.request_json("GET", "/models")
        assert loop.time() - started < 1.0
        await http.aclose()


def sse_head() -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def test_events_arrive_as_sent_and_a_finished_stream_reuses_its_connection() -> None:
    async def answer(box: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await box.read_request(reader)
            writer.write(sse_head())
            for piece in (
                b"event: a\r\ndata: 1\r\n\r\n",
                b"data: 2\n",
                b"data: 3\n\n: comment\n\ndata: [DONE]\n\n",
            ):
                writer.write(chunk(piece))
                await writer.drain()
                await asyncio.sleep(0.01)
            writer.write(b"0\r\n\r\n")

    async with upstream(answer) as up:
        http = client(up.port)
        for _ in range(2):
            seen = [[(e.event, e.data) for e in batch] async for batch in http.event_batches("/s", b"{}")]
            # one batch per read: the second and third pieces complete two events together
            assert seen == [[("a", b"1")], [(None, b"2\n3"), (None, b"[DONE]")]]
        await http.aclose()
    assert up.connections == 1


async def test_closing_a_stream_early_closes_its_connection() -> None:
    async def endless(box: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await box.read_request(reader)
        writer.write(sse_head())
        while True:
            writer.write(chunk(b"data: x\n\n"))
            await writer.drain()
            await asyncio.sleep(0.005)

    async with upstream(endless) as up:
        http = client(up.port)
        batches = http.event_batches("/s", b"{}")
        async for _ in batches:
            break
        await batches.aclose()
        await asyncio.wait_for(up.closed.wait(), 2)
        await http.aclose()


async def test_cancelling_a_request_closes_its_connection() -> None:
    async def silent(box: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await box.read_request(reader)
        await reader.read()  # returns when the client closes

    async with upstream(silent) as up:
        http = client(up.port)
        task = asyncio.create_task(http.request_json("POST", "/x", b"{}"))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(up.closed.wait(), 2)
        await http.aclose()


async def test_a_slow_reader_pauses_the_upstream_instead_of_buffering() -> None:
    sent = 0

    async def flood(box: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        await box.read_request(reader)
        writer.write(sse_head())
        event = chunk(b"data: " + b"x" * 8000 + b"\n\n")
        for _ in range(2000):  # 16 MB if nobody pushed back
            writer.write(event)
            sent += len(event)
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await reader.read()

    async with upstream(flood) as up:
        http = client(up.port)
        batches = http.event_batches("/s", b"{}")
        count = len(await anext(batches))
        await asyncio.sleep(0.5)
        # socket buffers hold a few MB at most; without back-pressure all 16 MB would have been sent
        assert sent < 8_000_000
        async for batch in batches:
            count += len(batch)
        assert count == 2000
        await http.aclose()


async def test_stream_that_breaks_midway() -> None:
    async def cut(box: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await box.read_request(reader)
        writer.write(sse_head() + chunk(b"data: 1\n\n"))
        await writer.drain()
        writer.transport.abort()

    async with upstream(cut) as up:
        http = client(up.port)
        with pytest.raises(UpstreamStreamBroken, match="stream broke"):
            async for _ in http.event_batches("/s", b"{}"):
                pass
        await http.aclose()


def test_sse_parser_limits_and_a_missing_final_blank_line() -> None:
    parser = SseParser()
    assert parser.feed(b"data: a") == []
    assert [e.data for e in parser.close()] == [b"a"]
    with pytest.raises(SseTooLarge):
        SseParser().feed(b"data: " + b"x" * (17 * 1024 * 1024))


SSE_STREAM = (
    b": keep-alive comment\r\n\r\n"
    b'event: message_start\r\ndata: {"a": 1}\r\n\r\n'
    b"data: line one\ndata: line two\n\n"
    b"data:no-space\rdata:  two spaces\r\r"
    b"id: 7\nretry: 10\ndata: [DONE]\n\n"
    b"\n\n\n"
    b"data: tail without blank line"
)
SSE_EXPECTED = [
    ("message_start", b'{"a": 1}'),
    (None, b"line one\nline two"),
    (None, b"no-space\n two spaces"),
    (None, b"[DONE]"),
    (None, b"tail without blank line"),
]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, len(SSE_STREAM)])
def test_sse_parser_gives_the_same_events_however_the_body_is_split(size: int) -> None:
    parser = SseParser()
    events = []
    for start in range(0, len(SSE_STREAM), size):
        events.extend(parser.feed(SSE_STREAM[start : start + size]))
    events.extend(parser.close())
    assert [(e.event, e.data) for e in events] == SSE_EXPECTED


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@asynccontextmanager
async def tls_upstream(certificate: tuple[Path, Path], body: bytes) -> AsyncIterator[int]:
    """An https upstream with the self-signed certificate, answering every request with ``body``."""
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


async def test_tls_verifies_the_upstream_and_trusts_what_ssl_cert_file_names(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, _ = certificate
    async with tls_upstream(certificate, b'{"data": []}') as port:
        untrusted = HttpClient("up", f"https://127.0.0.1:{port}/v1", {}, Timeouts())
        with pytest.raises(UpstreamConnectError, match="TLS failed"):
            await untrusted.request_json("GET", "/models")
        await untrusted.aclose()

        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        trusted = HttpClient("up", f"https://127.0.0.1:{port}/v1", {}, Timeouts())
        parsed, _ = await trusted.request_json("GET", "/models")
        assert parsed == {"data": []}
        await trusted.aclose()


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
                up_reader, up_writer = await asyncio.open_connection(host, int(port))
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                url = urlsplit(target.decode())
                assert url.hostname is not None and url.port is not None
                up_reader, up_writer = await asyncio.open_connection(url.hostname, url.port)
                up_writer.write(head)
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


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


async def test_plain_http_through_a_proxy_names_the_whole_url() -> None:
    async with upstream(keep_answering) as up, forward_proxy() as (proxy, proxy_port):
        http = HttpClient(
            "up", f"http://127.0.0.1:{up.port}/v1", {}, Timeouts(), f"http://u:p%40ss@127.0.0.1:{proxy_port}"
        )
        parsed, _ = await http.request_json("POST", "/chat/completions", b"{}")
        await http.aclose()
    assert parsed == {"ok": True}
    head = proxy.heads[0]
    assert head.startswith(b"POST http://127.0.0.1:%d/v1/chat/completions HTTP/1.1\r\n" % up.port)
    assert b"Proxy-Authorization: Basic " + base64.b64encode(b"u:p@ss") in head


async def test_tls_through_a_connect_tunnel_and_a_refusing_proxy(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    async with tls_upstream(certificate, b'{"secure": true}') as port:
        async with forward_proxy() as (proxy, proxy_port):
            http = HttpClient(
                "up", f"https://127.0.0.1:{port}/v1", {}, Timeouts(), f"http://127.0.0.1:{proxy_port}"
            )
            for _ in range(2):  # the tunnelled connection is pooled like any other
                parsed, _ = await http.request_json("GET", "/models")
                assert parsed == {"secure": True}
            await http.aclose()
        assert len(proxy.heads) == 1
        assert proxy.heads[0].startswith(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\n" % port)

        async with forward_proxy(refuse=True) as (_, proxy_port):
            http = HttpClient(
                "up", f"https://127.0.0.1:{port}/v1", {}, Timeouts(), f"http://127.0.0.1:{proxy_port}"
            )
            with pytest.raises(UpstreamConnectError, match="proxy answered CONNECT with 403"):
                await http.request_json("GET", "/models")
            await http.aclose()


def test_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert proxy_for("https", "api.openai.com", None) is None
    monkeypatch.setenv("HTTPS_PROXY", "http://egress:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example, .corp:8443")
    assert proxy_for("https", "api.openai.com", None) == Proxy("egress", 3128, None)
    assert proxy_for("http", "api.openai.com", None) is None  # HTTP_PROXY is not set
    assert proxy_for("https", "vllm.internal.example", None) is None
    assert proxy_for("https", "gpu.corp", None) is None
    assert (
        proxy_for("https", "127.0.0.1", None) is None
    )  # loopback never goes through the environment's proxy
    assert proxy_for("https", "localhost", None) is None
    assert proxy_for("https", "127.0.0.1", "http://explicit:8080") == Proxy("explicit", 8080, None)


async def test_a_compressed_body_that_expands_past_the_limit_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("interlock.providers.http.MAX_RESPONSE_BYTES", 1024 * 1024)
    bomb = gzip.compress(b"\0" * (4 * 1024 * 1024))  # 4 KiB on the wire, 4 MiB decoded

    async def answer(box: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await box.read_request(reader)
        writer.write(json_reply(bomb, **{"Content-Encoding": "gzip"}))
        await reader.read()

    async with upstream(answer) as up:
        http = client(up.port)
        with pytest.raises(UpstreamBadResponse, match="decodes to more than 1048576 bytes"):
            await http.request_json("POST", "/x", b"{}")
        await http.aclose()
