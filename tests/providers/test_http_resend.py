"""A request that meets a pooled connection the upstream had already closed is sent again, once, on
a new connection; a request whose answer had begun, or that failed on a new connection, is not."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest

from interlock.core.errors import UpstreamError
from interlock.providers.http import HttpClient
from tests.providers.raw_upstream import (
    Upstream,
    UpstreamHandler,
    chunk,
    client,
    json_reply,
    sse_head,
    upstream,
)


async def hang_up(writer: asyncio.StreamWriter, how: str) -> None:
    """Close the connection without answering: an orderly close (EOF) or a reset."""
    if how == "reset":
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
    else:
        writer.close()


def answer_once_per_connection(how: str, stream: bool = False) -> UpstreamHandler:
    """Each connection answers its first request and hangs up on the next one, as an upstream
    does that closed the connection while it sat idle in the client's pool."""

    async def handler(box: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await box.read_request(reader)
        if stream:
            writer.write(sse_head() + chunk(b"data: 1\n\ndata: [DONE]\n\n") + b"0\r\n\r\n")
        else:
            writer.write(json_reply(b'{"n": %d}' % box.connections))
        await writer.drain()
        await box.read_request(reader)
        await hang_up(writer, how)

    return handler


@pytest.mark.parametrize("how", ["eof", "reset"])
async def test_a_request_on_a_connection_the_upstream_closed_is_sent_again(how: str) -> None:
    async with upstream(answer_once_per_connection(how)) as up:
        http = client(up.port)
        first, _ = await http.request_json("POST", "/chat/completions", b'{"a":1}')
        second, _ = await http.request_json("POST", "/chat/completions", b'{"a":2}')
        await http.aclose()
    assert (first, second) == ({"n": 1}, {"n": 2})
    assert up.connections == 2
    # the same POST went out twice: on the closed connection, then on a new one
    assert [request.endswith(b'{"a":2}') for request in up.requests] == [False, True, True]


async def test_a_stream_request_on_a_closed_connection_is_sent_again() -> None:
    async with upstream(answer_once_per_connection("eof", stream=True)) as up:
        http = client(up.port)
        for _ in range(2):
            events = [e.data for batch in [b async for b in http.event_batches("/s", b"{}")] for e in batch]
            assert events == [b"1", b"[DONE]"]
        await http.aclose()
    assert up.connections == 2


async def test_a_request_is_sent_again_only_once() -> None:
    async def answer_first_only(
        box: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        first_connection = box.connections == 1
        await box.read_request(reader)
        if first_connection:
            writer.write(json_reply(b"{}"))
            await writer.drain()
            await box.read_request(reader)
        writer.close()

    async with upstream(answer_first_only) as up:
        http = client(up.port)
        await http.request_json("POST", "/x", b"{}")
        with pytest.raises(UpstreamError, match="closed the connection without answering"):
            await http.request_json("POST", "/x", b"{}")
        await http.aclose()
    assert up.connections == 2


async def test_a_new_connection_closed_without_an_answer_is_not_sent_again() -> None:
    async def hang_up_at_once(
        box: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await box.read_request(reader)
        writer.close()

    async with upstream(hang_up_at_once) as up:
        http = client(up.port)
        with pytest.raises(UpstreamError, match="closed the connection without answering"):
            await http.request_json("POST", "/x", b"{}")
        await http.aclose()
    assert up.connections == 1


@pytest.mark.parametrize(
    "partial",
    [
        b"HTTP/1.1 200 OK\r\nContent-",
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{",
    ],
    ids=["in-the-head", "in-the-body"],
)
async def test_a_request_whose_answer_had_begun_is_not_sent_again(partial: bytes) -> None:
    async def break_the_second_answer(
        box: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await box.read_request(reader)
        writer.write(json_reply(b"{}"))
        await box.read_request(reader)
        writer.write(partial)
        await writer.drain()
        writer.close()

    async with upstream(break_the_second_answer) as up:
        http: HttpClient = client(up.port)
        await http.request_json("POST", "/x", b"{}")
        with pytest.raises(UpstreamError):
            await http.request_json("POST", "/x", b"{}")
        await http.aclose()
    assert up.connections == 1
