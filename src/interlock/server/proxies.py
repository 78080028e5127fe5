"""Serving behind a TLS-terminating proxy: whose forwarding headers to believe, and HSTS.

A proxy that terminates TLS tells the gateway the original scheme and client in
``X-Forwarded-Proto`` and ``X-Forwarded-For``. Anyone can send those headers, so uvicorn applies
them only for connections from ``server.trusted_proxies``; with none configured they are ignored.
Once the scheme is known to be https, the dashboard's cookies are ``Secure`` and, with
``server.hsts``, every response carries ``Strict-Transport-Security``.
"""

from __future__ import annotations

from typing import Any

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interlock.config.schema import ServerSpec

__all__ = ["StrictTransportSecurity", "proxy_options", "transport_middleware"]


def proxy_options(server: ServerSpec) -> dict[str, Any]:
    """uvicorn's settings for forwarding headers: believed only from the trusted proxies."""
    if not server.trusted_proxies:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": ",".join(server.trusted_proxies)}


def transport_middleware(server: ServerSpec) -> list[Middleware]:
    """The middleware ``server`` asks for: HSTS when ``server.hsts`` is on, else none."""
    if not server.hsts:
        return []
    return [Middleware(StrictTransportSecurity, max_age_s=server.hsts_max_age_s)]


class StrictTransportSecurity:
    """Adds ``Strict-Transport-Security`` to responses to https requests (never to plain http)."""

    def __init__(self, app: ASGIApp, max_age_s: int) -> None:
        self.app = app
        self.header = (b"strict-transport-security", f"max-age={max_age_s}; includeSubDomains".encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("scheme") != "https":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), self.header]
            await send(message)

        await self.app(scope, receive, send_with_header)
