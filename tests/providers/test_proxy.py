"""Upstreams through an HTTP proxy: absolute-form requests, CONNECT tunnels, and which hosts the
environment's ``NO_PROXY`` exempts."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from interlock.core.errors import UpstreamConnectError
from interlock.providers.http import HttpClient, Timeouts
from interlock.providers.proxy import Proxy, proxy_for
from tests.providers.raw_upstream import forward_proxy, keep_answering, tls_upstream, upstream


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


PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No proxy variables but those a test sets."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_proxy_from_the_environment(environment: pytest.MonkeyPatch) -> None:
    assert proxy_for("https", "api.openai.com", None) is None
    environment.setenv("HTTPS_PROXY", "http://egress:3128")
    environment.setenv("NO_PROXY", "internal.example, .corp")
    assert proxy_for("https", "api.openai.com", None) == Proxy("egress", 3128, None)
    assert proxy_for("http", "api.openai.com", None) is None  # HTTP_PROXY is not set
    assert proxy_for("https", "vllm.internal.example", None) is None
    assert proxy_for("https", "gpu.corp", None) is None
    # loopback never goes through the environment's proxy; an explicit one applies to anything
    assert proxy_for("https", "127.0.0.1", None) is None
    assert proxy_for("https", "localhost", None) is None
    assert proxy_for("https", "::1", None) is None
    assert proxy_for("https", "127.0.0.1", "http://explicit:8080") == Proxy("explicit", 8080, None)


@pytest.mark.parametrize(
    ("no_proxy", "host", "port", "exempt"),
    [
        ("*", "api.openai.com", 443, True),
        ("example.com", "example.com", 443, True),
        ("example.com", "api.example.com", 443, True),
        ("example.com", "notexample.com", 443, False),
        (".example.com", "example.com", 443, True),
        (".example.com", "a.b.example.com", 443, True),
        ("*.example.com", "a.example.com", 443, True),
        ("Example.COM.", "api.example.com", 443, True),
        (" a.test ,, example.com ", "example.com", 443, True),
        ("example.com:8443", "example.com", 8443, True),
        ("example.com:8443", "example.com", 443, False),
        ("10.1.2.3", "10.1.2.3", 443, True),
        ("10.1.2.3", "10.1.2.4", 443, False),
        ("2.3", "10.1.2.3", 443, False),  # an address never matches as a suffix
        ("0.1", "10.0.0.1", 443, False),
        ("10.0.0.0/8", "10.200.3.4", 443, True),
        ("10.0.0.0/8", "11.0.0.1", 443, False),
        ("10.0.0.0/8", "ten.example", 443, False),
        ("fd00::/8", "fd12::7", 443, True),
        ("fd12::7", "fd12::7", 443, True),
        ("[fd12::7]", "fd12::7", 443, True),
        ("[fd12::7]:8443", "fd12::7", 8443, True),
        ("[fd12::7]:8443", "fd12::7", 443, False),
        ("fd12::7", "10.0.0.1", 443, False),
        ("", "example.com", 443, False),
    ],
)
def test_no_proxy_entries(
    environment: pytest.MonkeyPatch, no_proxy: str, host: str, port: int, exempt: bool
) -> None:
    environment.setenv("HTTPS_PROXY", "http://egress:3128")
    environment.setenv("NO_PROXY", no_proxy)
    via = proxy_for("https", host, None, port)
    assert (via is None) == exempt


async def test_the_client_honours_the_environment(environment: pytest.MonkeyPatch) -> None:
    async with upstream(keep_answering) as up, forward_proxy() as (proxy, proxy_port):
        environment.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy_port}")
        # a name for the upstream that is not loopback-looking, so that the environment applies
        base = f"http://upstream.test:{up.port}/v1"
        http = HttpClient("up", base, {}, Timeouts())
        parsed, _ = await http.request_json("GET", "/models")
        await http.aclose()
        environment.setenv("NO_PROXY", f"upstream.test:{up.port + 1}")  # another port: still proxied
        http = HttpClient("up", base, {}, Timeouts())
        await http.request_json("GET", "/models")
        await http.aclose()
    assert parsed == {"ok": True}
    assert [head.split(b"\r\n", 1)[0] for head in proxy.heads] == [
        b"GET http://upstream.test:%d/v1/models HTTP/1.1" % up.port
    ] * 2
