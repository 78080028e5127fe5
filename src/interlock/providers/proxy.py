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


def proxy_for(scheme: str, host: str, configured: str | None, port: int | None = None) -> Proxy | None:
    """The proxy to reach ``host`` (on ``port``) through, or None to connect directly."""
    if configured:
        return Proxy.parse(configured)
    if _is_loopback(host):
        return None
    proxies = getproxies_environment()  # HTTPS_PROXY / https_proxy, HTTP_PROXY, NO_PROXY …
    url = proxies.get(scheme)
    if not url or _exempt(host, port, proxies.get("no", "")):
        return None
    return Proxy.parse(url)


def _exempt(host: str, port: int | None, no_proxy: str) -> bool:
    """``NO_PROXY`` as curl and Go read it: a comma list of ``*``; host names, each covering its
    subdomains too (a leading ``.`` or ``*.`` changes nothing); IP addresses and CIDR ranges, which
    match addresses only, never as a suffix. An entry with ``:port`` (``[v6]:port``) covers that port only."""
    host = host.lower().rstrip(".")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in no_proxy.split(","):
        name, entry_port = _split_port(entry.strip().lower())
        if entry_port is not None and entry_port != port:
            continue
        if name == "*":
            return True
        if address is not None:
            if _in_network(address, name):
                return True
            continue
        name = name.removeprefix("*").lstrip(".").rstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def _split_port(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):  # [v6] or [v6]:port
        address, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return address, int(port) if port.isdigit() else None
    if entry.count(":") == 1:  # host:port (a bare IPv6 address has more colons)
        name, _, port = entry.partition(":")
        return name, int(port) if port.isdigit() else None
    return entry, None


def _in_network(address: ipaddress.IPv4Address | ipaddress.IPv6Address, entry: str) -> bool:
    try:
        network = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False
    return address.version == network.version and address in network


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
