"""The upstream HTTP client shared by the adapters: pooled keep-alive connections, timeouts,
server-sent events, and the one place where transport errors become ``GatewayError``s."""

from __future__ import annotations

import ssl
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import orjson

from interlock.core.errors import (
    GatewayError,
    UpstreamBadResponse,
    UpstreamConnectError,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamStreamBroken,
    UpstreamTimeout,
)
from interlock.core.headers import header_problem
from interlock.providers.h1 import (
    ConnectionClosed,
    Connector,
    ConnectTimeout,
    Origin,
    Pool,
    ReadTimeout,
    Response,
    TransportError,
)
from interlock.providers.proxy import ProxyRefused, proxy_for
from interlock.providers.sse import SseEvent, SseParser, SseTooLarge
from interlock.providers.transport import SocketConnector

__all__ = ["Connector", "HttpClient", "SseEvent", "Timeouts", "error_from_status", "parse_retry_after"]

_MAX_ERROR_MESSAGE = 300
MAX_RESPONSE_BYTES = 256 * 1024 * 1024
"""A complete (non-streamed) upstream answer larger than this is refused rather than held in memory."""


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds. ``read_s`` bounds the silence between two reads of one response."""

    connect_s: float = 10.0
    read_s: float = 300.0
    keepalive_s: float = 4.0
    """Idle pooled connections are closed after this; kept below common server keep-alive
    timeouts (uvicorn's is 5 s) so a request never lands on a socket the server just closed."""


class HttpClient:
    """Requests to one upstream base URL over pooled keep-alive connections (``providers/h1.py``).

    Header bytes common to every request are encoded once. ``headers`` given per request (the trace
    context) are added to that request only; a value that could split the header block is dropped.
    A query string in the base URL (``?api-version=…``) is added to every request. ``transport``
    replaces the network (sockets, TLS, proxies) with another :class:`Connector`.
    """

    def __init__(
        self,
        provider: str,
        base_url: str,
        headers: Mapping[str, str],
        timeouts: Timeouts,
        proxy: str | None = None,
        transport: Connector | None = None,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        origin = Origin.parse(self.base_url)
        via = proxy_for(origin.scheme, origin.host, proxy, origin.port)
        self._prefix = origin.prefix
        self._query = origin.query
        fixed = {"Host": origin.host_header, "User-Agent": "interlock", **headers}
        if via is not None and origin.scheme == "http":
            # through a proxy, a plain-http request names its whole URL; https goes through a tunnel
            self._prefix = f"http://{origin.host_header}{origin.prefix}"
            if via.authorization:
                fixed["Proxy-Authorization"] = via.authorization
        fixed.setdefault("Accept-Encoding", "gzip, deflate")
        for name, value in fixed.items():
            if header_problem(name, value):
                raise ValueError(f"provider '{provider}': header {name!r} has characters HTTP does not allow")
        self._fixed = "".join(f"{name}: {value}\r\n" for name, value in fixed.items()).encode("latin-1")
        self._pool = Pool(
            origin,
            transport or SocketConnector(via),
            connect_s=timeouts.connect_s,
            read_s=timeouts.read_s,
            keepalive_s=timeouts.keepalive_s,
        )

    def _head(
        self, method: str, path: str, accept: bytes, body: bytes | None, extra: Mapping[str, str] | None
    ) -> bytes:
        target = self._prefix + path
        if self._query:
            target = f"{target}{'&' if '?' in path else '?'}{self._query}"
        parts = [f"{method} {target} HTTP/1.1\r\n".encode("latin-1"), self._fixed, accept]
        if extra:
            for name, value in extra.items():
                if header_problem(name, value) is None:
                    parts.append(f"{name}: {value}\r\n".encode("latin-1"))
        if body is not None:
            parts.append(b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
            parts.append(body)
        else:
            parts.append(b"\r\n")
        return b"".join(parts)

    async def _send(self, request: bytes) -> Response:
        try:
            response = await self._pool.request(request)
        except (OSError, ConnectTimeout) as exc:
            raise self._connect_error(exc) from None
        except TransportError as exc:
            raise self._early_error(exc) from None
        if response.status in _REDIRECTS:
            response.release()
            raise self._redirect_error(response)
        return response

    async def request_json(
        self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> tuple[Any, bytes]:
        """Send a request and return the parsed JSON body and its raw bytes, or raise. ``headers`` are
        added to this request only (a ``traceparent``, for instance)."""
        response = await self._send(self._head(method, path, _ACCEPT_JSON, body, headers))
        try:
            raw = await response.read(MAX_RESPONSE_BYTES)
        except TransportError as exc:
            raise self._body_error(exc) from None
        finally:
            response.release()
        if response.status >= 400:
            raise error_from_status(self.provider, response.status, response.headers, raw)
        content_type = response.headers.get("content-type", "")
        if "json" not in content_type:
            shown = _clip(content_type or "none")
            raise UpstreamBadResponse(
                f"upstream '{self.provider}' answered with content type '{shown}', not JSON"
            )
        try:
            return orjson.loads(raw), raw
        except orjson.JSONDecodeError as exc:
            raise UpstreamBadResponse(f"upstream '{self.provider}' answered with invalid JSON") from exc

    async def event_batches(
        self, path: str, body: bytes, headers: Mapping[str, str] | None = None
    ) -> AsyncGenerator[list[SseEvent], None]:
        """POST and yield the server-sent events of the answer as they arrive: each batch holds the
        events completed by one read (never none). Closing the iterator before the end closes the
        connection, which is what tells the upstream to stop generating."""
        response = await self._send(self._head("POST", path, _ACCEPT_SSE, body, headers))
        try:
            if response.status >= 400:
                raise error_from_status(
                    self.provider, response.status, response.headers, await _read_safely(response)
                )
            content_type = response.headers.get("content-type", "")
            if not content_type.startswith("text/event-stream"):
                raise UpstreamBadResponse(
                    f"upstream '{self.provider}' answered a stream request with content type "
                    f"'{_clip(content_type or 'none')}'"
                )
            parser = SseParser()
            while (chunk := await response.next_chunk()) is not None:
                if events := parser.feed(chunk):
                    yield events
            if events := parser.close():
                yield events
        except TransportError as exc:
            raise UpstreamStreamBroken(f"upstream '{self.provider}' stream broke: {exc}") from None
        except SseTooLarge as exc:
            raise UpstreamBadResponse(
                f"upstream '{self.provider}' sent an oversized stream event: {exc}"
            ) from None
        finally:
            response.release()

    async def aclose(self) -> None:
        self._pool.close()

    def _connect_error(self, exc: BaseException) -> GatewayError:
        if isinstance(exc, ConnectTimeout):
            return UpstreamTimeout(f"upstream '{self.provider}' timed out connecting")
        if isinstance(exc, ProxyRefused):
            return UpstreamConnectError(f"cannot connect to upstream '{self.provider}': {exc}")
        if isinstance(exc, ssl.SSLError | ssl.CertificateError):
            return UpstreamConnectError(
                f"cannot connect to upstream '{self.provider}': TLS failed ({_describe(exc)})"
            )
        return UpstreamConnectError(f"cannot connect to upstream '{self.provider}'")

    def _redirect_error(self, response: Response) -> GatewayError:
        """Redirects are not followed: a credential must not go where the base URL does not say, and
        a POST must not turn into a GET."""
        location = response.headers.get("location", "").strip()
        if not location:
            where = "redirect without a Location"
        else:
            origin = self._pool.origin
            target = urlsplit(urljoin(f"{origin.scheme}://{origin.host_header}/", location))
            # named without credentials or query, either of which may hold a secret
            host = target.netloc.rpartition("@")[2]
            where = f"redirect to {_clip(host + target.path)}"
        return UpstreamBadResponse(
            f"upstream '{self.provider}' answered {response.status} {where} (not followed: check the "
            "provider's base_url)"
        )

    def _early_error(self, exc: TransportError) -> GatewayError:
        """A failure before the status line."""
        if isinstance(exc, ReadTimeout):
            return UpstreamTimeout(f"upstream '{self.provider}' timed out")
        if isinstance(exc, ConnectionClosed):
            return UpstreamError(f"upstream '{self.provider}' closed the connection without answering")
        return UpstreamBadResponse(f"upstream '{self.provider}' sent an invalid HTTP response: {exc}")

    def _body_error(self, exc: TransportError) -> GatewayError:
        if isinstance(exc, ReadTimeout):
            return UpstreamTimeout(f"upstream '{self.provider}' timed out")
        return UpstreamBadResponse(f"upstream '{self.provider}' sent a broken response body: {exc}")


_ACCEPT_JSON = b"Accept: application/json\r\n"
_ACCEPT_SSE = b"Accept: text/event-stream\r\n"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a ``Retry-After`` (or ``retry-after-ms``) header; None if absent or a date.
    ``headers`` has lower-case names."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            return None
    return None


def error_from_status(provider: str, status: int, headers: Mapping[str, str], raw: bytes) -> GatewayError:
    """Turn an upstream error status into the gateway error the caller should see."""
    message = _error_message(raw)
    if status == 429:
        return UpstreamRateLimited(
            f"upstream '{provider}' is rate limiting: {message}", retry_after=parse_retry_after(headers)
        )
    if status in (401, 403):
        # Never pass the upstream's words through: they may quote the gateway's credential.
        return UpstreamError(f"upstream '{provider}' rejected the gateway's credentials ({status})")
    if status in (400, 413, 422):
        err = UpstreamRejected(f"{message}", status=status)
        err.code = _error_code(raw) or "upstream_rejected"
        return err
    if status == 404:
        return UpstreamError(f"upstream '{provider}' does not know the requested model or route (404)")
    return UpstreamError(f"upstream '{provider}' failed with status {status}: {message}")


def _error_message(raw: bytes) -> str:
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        text = raw.decode("utf-8", errors="replace").strip()
        return _clip(text) if text and "<" not in text[:1] else "no details"
    err = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(err, dict) and isinstance(err.get("message"), str):
        return _clip(err["message"])
    if isinstance(err, str):
        return _clip(err)
    if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
        return _clip(parsed["message"])
    return "no details"


def _error_code(raw: bytes) -> str | None:
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    err = parsed.get("error") if isinstance(parsed, dict) else None
    code = err.get("code") if isinstance(err, dict) else None
    return code if isinstance(code, str) and len(code) <= 64 else None


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_ERROR_MESSAGE else text[:_MAX_ERROR_MESSAGE] + "…"


async def _read_safely(response: Response) -> bytes:
    try:
        return await response.read(64 * 1024)
    except TransportError:
        return b""


def _describe(exc: BaseException) -> str:
    return type(exc).__name__
