"""The upstream HTTP client over real loopback sockets, against small servers that answer with exact
bytes: pooling, body framings, content encodings, back-pressure, timeouts, cancellation and every
way a response can be broken."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from pathlib import Path

import pytest

from interlock.core.errors import (
    UpstreamBadResponse,
    UpstreamConnectError,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamStreamBroken,
    UpstreamTimeout,
)
from interlock.providers.http import HttpClient, Timeouts
from interlock.server.thread import free_port
from tests.providers.raw_upstream import (
    Upstream,
    chunk,
    client,
    json_reply,
    keep_answering,
    reply,
    sse_head,
    tls_upstream,
    upstream,
)


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


async def test_a_refused_connection_is_a_connect_error() -> None:
    http = client(free_port())
    with pytest.raises(UpstreamConnectError, match=r"^cannot connect to upstream 'up'$"):
        await http.request_json("GET", "/models")
    await http.aclose()


async def test_a_silent_upstream_times_out_and_its_connection_is_closed() -> None:
    async def silent(box: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await box.read_request(reader)
        await reader.read()  # returns when the client closes the connection

    async with upstream(silent) as up:
        http = client(up.port, read_s=0.1)
        with pytest.raises(UpstreamTimeout, match=r"^upstream 'up' timed out$"):
            await http.request_json("GET", "/models")
        # the timed-out connection is closed at once, not left for the pool to close later
        await asyncio.wait_for(up.closed.wait(), 10)
        await http.aclose()


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
    received = asyncio.Event()

    async def silent(box: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await box.read_request(reader)
        received.set()
        await reader.read()  # returns when the client closes

    async with upstream(silent) as up:
        http = client(up.port)
        task = asyncio.create_task(http.request_json("POST", "/x", b"{}"))
        await received.wait()
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
