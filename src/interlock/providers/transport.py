"""Where the upstream client's bytes go: the origin of a base URL, the transport errors, and the
:class:`Connector` seam that opens a byte stream to an origin.

The pool in ``providers/h1.py`` speaks HTTP/1.1 over whatever a connector hands it, as httpx's
``transport=`` lets a test swap the network. :class:`SocketConnector`, the default, dials TCP:

* every address a name resolves to is tried, IPv6 and IPv4 interleaved, and an address that has not
  connected within :data:`ATTEMPT_DELAY` gets company rather than the whole connect timeout (the
  "happy eyeballs" of RFC 8305), so a dual-stack name where one family is dead still connects;
* TLS with the system's trust store for https origins;
* through an HTTP proxy when one applies: a ``CONNECT`` tunnel for https (TLS runs end to end
  inside it), the proxy itself for plain http (whose requests then name the whole URL).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from interlock.providers.proxy import Proxy, open_tunnel

__all__ = [
    "ATTEMPT_DELAY",
    "ConnectTimeout",
    "ConnectionClosed",
    "Connector",
    "Origin",
    "ProtocolError",
    "ReadTimeout",
    "SocketConnector",
    "TransportError",
]

ATTEMPT_DELAY = 0.25
"""Seconds one address may take to connect before the next address is tried alongside it."""

_AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]


class TransportError(Exception):
    """The exchange with the upstream failed below HTTP semantics."""


class ConnectTimeout(TransportError):
    pass


class ConnectionClosed(TransportError):
    """The upstream closed (or reset) the connection before the response was complete."""

    def __init__(self, message: str, *, clean: bool = False) -> None:
        super().__init__(message)
        self.clean = clean
        """An orderly close (EOF), not a reset: it may end a body delimited by the close."""


class ReadTimeout(TransportError):
    pass


class ProtocolError(TransportError):
    """The upstream's bytes are not a valid HTTP/1.1 response."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where requests go: ``scheme://host:port``, the path prefix of the base URL, and its query."""

    scheme: str
    host: str
    port: int
    prefix: str
    query: str = ""
    """The base URL's query string (Azure's ``api-version=…``): every request carries it."""

    @classmethod
    def parse(cls, url: str) -> Origin:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base URL must be http:// or https:// with a host, got {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(parts.scheme, parts.hostname, port, parts.path.rstrip("/"), parts.query)

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


class Connector(Protocol):
    """Opens byte streams for the pool. An implementation that is not sockets (an in-memory peer in
    a test) calls ``protocol.connection_made`` with an ``asyncio.Transport`` of its own."""

    async def connect(self, origin: Origin, protocol: asyncio.Protocol) -> None:
        """Open a stream to ``origin`` (TLS for https) and attach ``protocol`` to it, or raise
        ``OSError``. The pool bounds the time this takes."""
        ...


class SocketConnector:
    """The real network: TCP to every resolved address in turn, TLS, and an optional proxy."""

    def __init__(self, proxy: Proxy | None = None) -> None:
        self._proxy = proxy
        self._tls: ssl.SSLContext | None = None

    async def connect(self, origin: Origin, protocol: asyncio.Protocol) -> None:
        loop = asyncio.get_running_loop()
        tls = self._tls_context() if origin.scheme == "https" else None
        proxy = self._proxy
        if proxy is not None and tls is not None:
            raw = await open_tunnel(proxy, origin.host, origin.port)
            try:
                transport = await loop.start_tls(raw, protocol, tls, server_hostname=origin.host)
            except BaseException:
                raw.close()
                raise
            if transport is None:  # pragma: no cover - the tunnel closed during the handshake
                raise ConnectionResetError("the tunnel closed during the TLS handshake")
            protocol.connection_made(transport)
            return
        # a plain-http upstream behind a proxy gets requests in absolute form (HttpClient)
        host, port = (proxy.host, proxy.port) if proxy is not None else (origin.host, origin.port)
        sock = await open_socket(host, port)
        try:
            await loop.create_connection(
                lambda: protocol, sock=sock, ssl=tls, server_hostname=origin.host if tls else None
            )
        except BaseException:
            sock.close()
            raise

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:  # loading the trust store costs milliseconds: once per connector
            self._tls = ssl.create_default_context()
        return self._tls


async def open_socket(host: str, port: int) -> socket.socket:
    """A connected TCP socket to ``host:port``, trying each address the name resolves to."""
    literal = _literal_address(host, port)
    if literal is not None:  # no trip to the resolver's thread for an address
        return await _dial(literal)
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if not infos:
        raise OSError(f"{host} resolves to no address")
    return await _race(_interleave(infos))


def _literal_address(host: str, port: int) -> _AddrInfo | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if address.version == 6:
        if "%" in host:  # a zone index wants the resolver to turn it into a number
            return None
        return (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port, 0, 0))
    return (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))


def _interleave(infos: Sequence[_AddrInfo]) -> list[_AddrInfo]:
    """Alternate address families, keeping the resolver's order within each (RFC 8305 §4)."""
    first = infos[0][0]
    same = deque(info for info in infos if info[0] == first)
    other = deque(info for info in infos if info[0] != first)
    ordered: list[_AddrInfo] = []
    while same or other:
        for queue in (same, other):
            if queue:
                ordered.append(queue.popleft())
    return ordered


async def _race(addresses: list[_AddrInfo]) -> socket.socket:
    """Start an attempt on the first address, and on the next one whenever an attempt fails or
    :data:`ATTEMPT_DELAY` passes without a connection; the first socket to connect wins."""
    loop = asyncio.get_running_loop()
    waiting = deque(addresses)
    running: set[asyncio.Task[socket.socket]] = set()
    errors: list[BaseException] = []
    try:
        while waiting or running:
            if waiting:
                running.add(loop.create_task(_dial(waiting.popleft())))
            done, running = await asyncio.wait(
                running, timeout=ATTEMPT_DELAY if waiting else None, return_when=asyncio.FIRST_COMPLETED
            )
            connected = [task.result() for task in done if task.exception() is None]
            errors.extend(error for task in done if (error := task.exception()) is not None)
            if connected:
                for extra in connected[1:]:
                    extra.close()
                return connected[0]
    finally:
        for task in running:
            task.cancel()
        if running:  # each attempt closes its own socket as it unwinds
            await asyncio.wait(running)
    if len(errors) == 1:
        raise errors[0]
    raise OSError(f"no address answered: {'; '.join(str(error) for error in errors)}")


async def _dial(address: _AddrInfo) -> socket.socket:
    family, kind, proto, _, sockaddr = address
    sock = socket.socket(family, kind, proto)
    try:
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock
