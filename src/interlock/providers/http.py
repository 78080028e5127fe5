"""The upstream HTTP client shared by the adapters: pooled keep-alive connections, timeouts,
server-sent events, and the one place where transport errors become ``GatewayError``s."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from interlock.errors import (
    GatewayError,
    UpstreamBadResponse,
    UpstreamConnectError,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamStreamBroken,
    UpstreamTimeout,
)

__all__ = ["HttpClient", "SseEvent", "Timeouts", "error_from_status", "iter_sse", "parse_retry_after"]

_MAX_ERROR_MESSAGE = 300


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds. ``read_s`` bounds the silence between two reads of one response."""

    connect_s: float = 10.0
    read_s: float = 300.0
    total_s: float | None = None
    keepalive_s: float = 4.0
    """Idle pooled connections are closed after this; kept below common server keep-alive
    timeouts (uvicorn's is 5 s) so a request never lands on a socket the server just closed."""


@dataclass(frozen=True, slots=True)
class SseEvent:
    event: str | None
    data: str


class HttpClient:
    """One pooled aiohttp session for one upstream base URL. Created lazily inside the event loop."""

    def __init__(self, provider: str, base_url: str, headers: Mapping[str, str], timeouts: Timeouts) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self._headers = dict(headers)
        self._timeouts = timeouts
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            t = self._timeouts
            connector = aiohttp.TCPConnector(
                limit=0, keepalive_timeout=t.keepalive_s, ttl_dns_cache=300, enable_cleanup_closed=True
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=t.total_s, sock_connect=t.connect_s, sock_read=t.read_s),
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def request_json(
        self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> tuple[Any, bytes]:
        """Send a request and return the parsed JSON body and its raw bytes, or raise. ``headers`` are
        added to this request only (a ``traceparent``, for instance)."""
        sent = _JSON_HEADERS if body else None
        if headers:
            sent = {**sent, **headers} if sent else dict(headers)
        try:
            async with self._get_session().request(
                method, self.base_url + path, data=body, headers=sent
            ) as resp:
                raw = await resp.read()
                if resp.status >= 400:
                    raise error_from_status(self.provider, resp.status, resp.headers, raw)
                if "json" not in resp.headers.get("Content-Type", ""):
                    raise UpstreamBadResponse(
                        f"upstream '{self.provider}' answered with content type "
                        f"'{_clip(resp.headers.get('Content-Type', 'none'))}', not JSON"
                    )
        except GatewayError:
            raise
        except BaseException as exc:
            raise _convert(self.provider, exc) from exc
        try:
            return orjson.loads(raw), raw
        except orjson.JSONDecodeError as exc:
            raise UpstreamBadResponse(f"upstream '{self.provider}' answered with invalid JSON") from exc

    @asynccontextmanager
    async def stream(
        self, path: str, body: bytes, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """POST and yield the open response once its status says a stream follows."""
        sent = {**_SSE_HEADERS, **headers} if headers else _SSE_HEADERS
        try:
            resp = await self._get_session().post(self.base_url + path, data=body, headers=sent)
        except BaseException as exc:
            raise _convert(self.provider, exc) from exc
        try:
            if resp.status >= 400:
                raw = await _read_safely(resp)
                raise error_from_status(self.provider, resp.status, resp.headers, raw)
            content_type = resp.headers.get("Content-Type", "")
            if not content_type.startswith("text/event-stream"):
                raise UpstreamBadResponse(
                    f"upstream '{self.provider}' answered a stream request with content type "
                    f"'{_clip(content_type or 'none')}'"
                )
            yield resp
        finally:
            # close (not release): a half-read stream must not go back to the pool, and closing the
            # socket is what tells the upstream to stop generating.
            resp.close()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


_JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
_SSE_HEADERS = {"Content-Type": "application/json", "Accept": "text/event-stream"}


async def iter_sse(provider: str, resp: aiohttp.ClientResponse) -> AsyncIterator[SseEvent]:
    """Yield server-sent events from ``resp``; raise ``UpstreamStreamBroken`` on a broken transport."""
    event: str | None = None
    data: list[str] = []
    try:
        async for raw_line in resp.content:
            line = raw_line.decode("utf-8", errors="replace").rstrip("\r\n")
            if not line:
                if data:
                    yield SseEvent(event, "\n".join(data))
                event, data = None, []
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" ") if len(line) > 5 else "")
            elif line.startswith("event:"):
                event = line[6:].strip()
            # comments (":") and unknown fields are ignored, as the SSE spec says
        if data:
            yield SseEvent(event, "\n".join(data))
    except GatewayError:
        raise
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise UpstreamStreamBroken(f"upstream '{provider}' stream broke: {_describe(exc)}") from exc


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a ``Retry-After`` (or ``retry-after-ms``) header; None if absent or a date."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("Retry-After")
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


async def _read_safely(resp: aiohttp.ClientResponse) -> bytes:
    try:
        return await resp.read()
    except (TimeoutError, aiohttp.ClientError, OSError):
        return b""


def _describe(exc: BaseException) -> str:
    return type(exc).__name__


def _convert(provider: str, exc: BaseException) -> BaseException:
    """Map a transport exception to a gateway error; cancellation passes through untouched."""
    if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | SystemExit):
        return exc
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return UpstreamTimeout(f"upstream '{provider}' timed out")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamConnectError(f"cannot connect to upstream '{provider}'")
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError):
        return UpstreamError(f"upstream '{provider}' closed the connection without answering")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return UpstreamBadResponse(f"upstream '{provider}' sent a broken response body")
    if isinstance(exc, aiohttp.ClientError | OSError):
        return UpstreamError(f"upstream '{provider}' request failed: {_describe(exc)}")
    return exc
