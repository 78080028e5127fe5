"""The ASGI apps the HTTP-server comparison serves (imported by uvicorn and granian by name).

``raw_app`` does what the gateway's hot route does around the chain: read the body, parse it as
JSON, answer a ~1 KB JSON body with a few headers. ``starlette_app`` puts the same handler behind a
Starlette router, as the gateway mounts its /v1 routes, to show what the framework layer costs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.routing import Route

from payloads import CHAT_REPLY

__all__ = ["raw_app", "starlette_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(CHAT_REPLY)).encode()),
    (b"x-request-id", b"req_0123456789abcdef01234567"),
]


async def _chat(scope: Scope, receive: Receive, send: Send) -> None:
    chunks: list[bytes] = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = orjson.loads(b"".join(chunks))
    status = 200 if isinstance(body, dict) else 400
    await send({"type": "http.response.start", "status": status, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": CHAT_REPLY})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
    elif scope["type"] == "http" and scope["path"] == "/health":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})
    else:
        await _chat(scope, receive, send)


class _AsgiEndpoint:
    """An ASGI app as a class instance: Starlette routes to it as-is, as the gateway's ``Exchange``
    (a bare function would be wrapped as a request/response handler instead)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


starlette_app = Starlette(
    routes=[
        Route("/v1/chat/completions", _AsgiEndpoint(_chat), methods=["POST"]),
        Route("/health", _AsgiEndpoint(raw_app), methods=["GET"]),
    ]
)
