"""ASGI layers that refuse a request from its headers, before any application reads its body.

- :func:`serve_limited` runs an app under a body size limit: a declared ``Content-Length`` over it
  is refused at once (413, body unread); a chunked body is cut off as soon as it passes the limit.
- :class:`AdminGuard` checks the caller's key before the admin API (FastAPI) reads a byte: FastAPI
  reads and parses the whole body before its dependencies run, so a check in a dependency comes
  too late to stop an unauthenticated caller from making it buffer hundreds of megabytes. (Each
  route's permission is then checked by the ``caller`` dependency, in ``server.admin_access``.)
- :func:`bearer_matches` compares a bearer token in constant time (``/metrics``).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from interlock.core.errors import BodyTooLarge, GatewayError, PermissionDenied
from interlock.governance.keys import KeyCache
from interlock.governance.roles import Permission, require
from interlock.server.asgi import (
    Message,
    Receive,
    Scope,
    Send,
    api_key_from,
    check_declared_length,
    header,
    request_id_for,
    send_bytes,
)
from interlock.server.errors import error_body, error_headers

__all__ = ["ASGIApp", "AdminGuard", "bearer_matches", "send_error", "serve_limited"]

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_DISCONNECT: Message = {"type": "http.disconnect"}


async def send_error(send: Send, scope: Scope, err: GatewayError) -> None:
    """Answer ``err`` in OpenAI's error shape, with the request's id."""
    headers = [(b"x-request-id", request_id_for(scope).encode()), *error_headers(err)]
    await send_bytes(send, err.status, error_body(err), headers, b"application/json")


async def serve_limited(app: ASGIApp, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    """Run ``app`` with its request body capped at ``limit`` bytes (413 beyond it).

    When a chunked body passes the limit, the 413 is sent from here (if the app has not begun an
    answer), the app is told the client disconnected, and whatever it sends after that is dropped.
    """
    try:
        check_declared_length(scope, limit)
    except BodyTooLarge as err:
        await send_error(send, scope, err)
        return
    received = 0
    started = False
    refused = False

    async def limited_receive() -> Message:
        nonlocal received, refused, started
        if refused:
            return _DISCONNECT
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                refused = True
                if not started:
                    started = True
                    err = BodyTooLarge(f"Request body exceeds the limit of {limit} bytes.")
                    await send_error(send, scope, err)
                return _DISCONNECT
        return message

    async def guarded_send(message: Message) -> None:
        nonlocal started
        if refused:
            return
        if message["type"] == "http.response.start":
            started = True
        await send(message)

    await app(scope, limited_receive, guarded_send)


def _route_path(scope: Scope) -> str:
    """The path below the mount point (Starlette keeps the full path and sets ``root_path``)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


class AdminGuard:
    """ASGI middleware for the admin app: a working key, from the headers, holding the permission
    of the route asked for (``permission``), before anything else; then the admin body limit.
    ``public`` paths (the API docs, when public) are let through; ``docs`` paths (the API docs,
    when admin-only) need the master key or an ``admin`` key."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        keys: KeyCache,
        enabled: bool,
        limit: int,
        public: frozenset[str],
        docs: frozenset[str] = frozenset(),
        permission: Callable[[Scope], Permission | None] | None = None,
    ) -> None:
        self.app = app
        self._keys = keys
        self._enabled = enabled
        self._limit = limit
        self._public = public
        self._docs = docs
        self._permission = permission

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _route_path(scope) not in self._public:
            try:
                await self._check(scope)
            except GatewayError as err:
                await send_error(send, scope, err)
                return
        await serve_limited(self.app, scope, receive, send, self._limit)

    async def _check(self, scope: Scope) -> None:
        if not self._enabled:
            raise PermissionDenied("The admin API is disabled: no master key is configured.")
        principal = await self._keys.authenticate(api_key_from(scope))
        if _route_path(scope) in self._docs and not (principal.is_master or "admin" in principal.roles):
            raise PermissionDenied("The admin API docs need an admin key.")
        permission = self._permission(scope) if self._permission is not None else None
        if permission is not None:
            require(principal, permission)


def bearer_matches(scope: Scope, token: str) -> bool:
    """Whether the request carries ``Authorization: Bearer <token>``; constant time in the token."""
    auth = header(scope, b"authorization") or ""
    scheme, _, given = auth.partition(" ")
    if scheme.lower() != "bearer":
        given = ""
    return hmac.compare_digest(given.strip().encode(), token.encode())
