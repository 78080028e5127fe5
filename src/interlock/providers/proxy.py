"""Egress through an HTTP proxy: which proxy an upstream uses, and the CONNECT tunnel for TLS.

A provider's ``proxy`` setting wins; without it the standard environment applies (``HTTPS_PROXY``
for https upstreams, ``HTTP_PROXY`` for http ones, ``NO_PROXY`` to exempt hosts), except that
loopback upstreams never go through an environment proxy. An https upstream is reached through a
``CONNECT`` tunnel and TLS runs end to end inside it; an http upstream's requests go to the proxy in
absolute form.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit
from urllib.request import getproxies_environment

__all__ = ["Proxy", "ProxyRefused", "open_tunnel", "proxy_for"]

_MAX_REPLY_BYTES = 16 * 1024


class ProxyRefused(OSError):
    """The proxy did not open the tunnel."""


@dataclass(frozen=True, slots=True)
class Proxy:
    host: str
    port: int
    authorization: str | None
    """The ``Proxy-Authorization`` value when the proxy URL carries credentials."""

    @classmethod
    def parse(cls, url: str) -> Proxy:
        parts = urlsplit(url if "://" in url else "http://" + url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError("a proxy must be an http:// URL with a host")
        authorization = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            authorization = "Basic " + base64.b64encode(pair).decode()
        return cls(parts.hostname, parts.port or 80, authorization)


def proxy_for(scheme: str, host: str, configured: str | None) -> Proxy | None:
    """The proxy to reach ``host`` through, or None to connect directly."""
    if configured:
        return Proxy.parse(configured)
    if _is_loopback(host):
        return None
    proxies = getproxies_environment()  # HTTPS_PROXY / https_proxy, HTTP_PROXY, NO_PROXY …
    url = proxies.get(scheme)
    if not url or _exempt(host, proxies.get("no", "")):
        return None
    return Proxy.parse(url)


def _exempt(host: str, no_proxy: str) -> bool:
    """``NO_PROXY``: ``*``, or hosts and domain suffixes (``example.com`` covers ``a.example.com``)."""
    host = host.lower().rstrip(".")
    for entry in no_proxy.split(","):
        name = entry.strip().lower().lstrip(".")
        if name.count(":") == 1:  # host:port (an IPv6 address has more colons)
            name = name.split(":")[0]
        name = name.strip("[]")
        if name == "*" or (name and (host == name or host.endswith("." + name))):
            return True
    return False


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Tunnel(asyncio.Protocol):
    """Reads the proxy's answer to ``CONNECT``; the connection then carries the tunnel."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.reply: asyncio.Future[bytes] = loop.create_future()
        self._buffer = b""

    def data_received(self, data: bytes) -> None:
        if self.reply.done():
            return
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end >= 0:
            self.reply.set_result(self._buffer[:end])
        elif len(self._buffer) > _MAX_REPLY_BYTES:
            self.reply.set_exception(ProxyRefused("the proxy's answer to CONNECT is too long"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.reply.done():
            self.reply.set_exception(ProxyRefused("the proxy closed the connection"))


async def open_tunnel(proxy: Proxy, host: str, port: int) -> asyncio.Transport:
    """A connection to ``proxy`` tunnelled to ``host:port``, ready for TLS."""
    loop = asyncio.get_running_loop()
    transport, tunnel = await loop.create_connection(lambda: _Tunnel(loop), proxy.host, proxy.port)
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    head = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
    if proxy.authorization:
        head += f"Proxy-Authorization: {proxy.authorization}\r\n"
    transport.write((head + "\r\n").encode("latin-1"))
    try:
        reply = await tunnel.reply
    except BaseException:
        transport.close()
        raise
    status_line = reply.split(b"\r\n", 1)[0].split()
    status = status_line[1].decode("latin-1", errors="replace") if len(status_line) > 1 else "nothing"
    if status != "200":
        transport.close()
        raise ProxyRefused(f"the proxy answered CONNECT with {status[:3]}")
    return transport
