"""Where requests go: a base URL's path and query (Azure's ``?api-version=``) are kept on every
request, from the config file to the wire; redirects are reported, never followed."""

from __future__ import annotations

import asyncio

import pytest

from interlock.config.schema import ProviderSpec
from interlock.core.errors import UpstreamBadResponse
from interlock.providers.anthropic import AnthropicProvider
from interlock.providers.registry import build_provider
from tests.providers.raw_upstream import Upstream, UpstreamHandler, client, json_reply, reply, upstream

CHAT = b'{"choices": [{"message": {"role": "assistant", "content": "hi"}}], "data": []}'


async def answer_chat(box: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        await box.read_request(reader)
        writer.write(json_reply(CHAT))
        await writer.drain()


def request_lines(up: Upstream) -> list[bytes]:
    return [request.split(b"\r\n", 1)[0] for request in up.requests]


async def test_a_base_url_query_is_kept_on_every_request() -> None:
    async with upstream(answer_chat) as up:
        base = f"http://127.0.0.1:{up.port}/openai/deployments/gpt4?api-version=2024-06-01"
        provider = build_provider("azure", ProviderSpec(kind="openai", base_url=base, api_key="k"))
        await provider.chat({"model": "gpt4", "messages": []})
        await provider.embeddings({"model": "gpt4", "input": "x"})
        await provider.list_models()
        await provider.aclose()
    assert request_lines(up) == [
        b"POST /openai/deployments/gpt4/chat/completions?api-version=2024-06-01 HTTP/1.1",
        b"POST /openai/deployments/gpt4/embeddings?api-version=2024-06-01 HTTP/1.1",
        b"GET /openai/deployments/gpt4/models?api-version=2024-06-01 HTTP/1.1",
    ]


async def test_a_base_url_query_joins_a_path_that_has_its_own() -> None:
    async def answer_models(
        box: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await box.read_request(reader)
        writer.write(json_reply(b'{"data": [{"id": "claude"}], "has_more": false}'))
        await writer.drain()

    async with upstream(answer_models) as up:
        provider = AnthropicProvider("a", f"http://127.0.0.1:{up.port}/v1/?tenant=t1", api_key="k")
        assert await provider.list_models() == ["claude"]
        await provider.aclose()
    # the trailing /v1 is still recognised, and the base query follows the path's own
    assert request_lines(up) == [b"GET /v1/models?limit=1000&tenant=t1 HTTP/1.1"]


REDIRECT_STATUSES = [
    ("301 Moved Permanently", 301),
    ("302 Found", 302),
    ("303 See Other", 303),
    ("307 Temporary Redirect", 307),
    ("308 Permanent Redirect", 308),
]


def redirect_to(status: str, location: str | None) -> UpstreamHandler:
    async def handler(box: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await box.read_request(reader)
        headers = {"Content-Type": "text/html", "Content-Length": "9"}
        if location is not None:
            headers["Location"] = location
        writer.write(reply(status, headers, b"<a>go</a>"))
        await writer.drain()
        await reader.read()

    return handler


@pytest.mark.parametrize(("status", "code"), REDIRECT_STATUSES)
async def test_a_redirect_is_reported_with_its_target_and_not_followed(status: str, code: int) -> None:
    location = "https://login.example.com/v2/chat?token=secret-123"
    async with upstream(redirect_to(status, location)) as up:
        http = client(up.port)
        with pytest.raises(UpstreamBadResponse) as caught:
            await http.request_json("POST", "/chat/completions", b"{}")
        await http.aclose()
    message = str(caught.value)
    assert message.startswith(f"upstream 'up' answered {code} redirect to login.example.com/v2/chat ")
    assert "secret" not in message and "JSON" not in message
    assert up.connections == 1 and len(up.requests) == 1


@pytest.mark.parametrize(
    ("location", "named"),
    [
        ("/moved/here?sig=1", "127.0.0.1:{port}/moved/here"),
        ("https://u:pw@other.test/x", "other.test/x"),
        (None, None),
    ],
    ids=["relative", "with-credentials", "no-location"],
)
async def test_a_redirect_of_a_stream_request(location: str | None, named: str | None) -> None:
    async with upstream(redirect_to("302 Found", location)) as up:
        http = client(up.port)
        with pytest.raises(UpstreamBadResponse) as caught:
            async for _ in http.event_batches("/chat/completions", b"{}"):
                pass
        await http.aclose()
    expected = "redirect without a Location" if named is None else "redirect to " + named.format(port=up.port)
    assert f"answered 302 {expected} (not followed" in str(caught.value)
    assert "pw" not in str(caught.value) and "sig" not in str(caught.value)
