"""Small ASGI helpers for the hot routes: reading bodies under a limit, sending JSON, headers."""

from __future__ import annotations

import asyncio
import itertools
import re
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from interlock.errors import BodyTooLarge, InvalidRequest

__all__ = [
    "Receive",
    "Scope",
    "Send",
    "cancel_on_disconnect",
    "header",
    "read_body",
    "read_json_object",
    "request_id_for",
    "send_bytes",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# unique per process (random prefix) and cheap per request (a counter, not a syscall)
_ID_PREFIX = "req_" + secrets.token_hex(6) + "_"
_ID_COUNTER = itertools.count(1)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of header ``name`` (lower-case bytes), decoded as latin-1."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def request_id_for(scope: Scope) -> str:
    """The caller's ``x-request-id`` when it is sane, else a fresh one."""
    given = header(scope, b"x-request-id")
    if given and _REQUEST_ID.match(given):
        return given
    return f"{_ID_PREFIX}{next(_ID_COUNTER):x}"


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole request body; ``BodyTooLarge`` as soon as it is known to exceed ``limit``."""
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"Request body is {int(declared)} bytes; the limit is {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise asyncio.CancelledError
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(f"Request body exceeds the limit of {limit} bytes.")
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks) if len(chunks) != 1 else chunks[0]


def read_json_object(raw: bytes) -> dict[str, Any]:
    """Parse a JSON object body or raise ``InvalidRequest`` saying what is wrong."""
    if not raw:
        raise InvalidRequest("Request body is empty; expected a JSON object.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"Request body is not valid JSON: {exc.msg} at position {exc.pos}.") from None
    if not isinstance(body, dict):
        raise InvalidRequest("Request body must be a JSON object.")
    return body


async def send_bytes(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]], content_type: bytes
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def cancel_on_disconnect(receive: Receive, work: Callable[[], Awaitable[None]]) -> bool:
    """Run ``work`` in the current task; cancel it if the client disconnects first.

    Returns False when the client went away. Runs in the current task (one watcher task, not two)
    because this sits on every request's path.
    """
    task = asyncio.current_task()
    assert task is not None
    running = True

    def on_disconnect(watcher: asyncio.Task[None]) -> None:
        if running and not watcher.cancelled():
            task.cancel()

    watcher = asyncio.create_task(_wait_disconnect(receive))
    watcher.add_done_callback(on_disconnect)
    try:
        await work()
        return True
    except asyncio.CancelledError:
        if watcher.done() and not watcher.cancelled() and task.uncancel() == 0:
            return False
        raise
    finally:
        running = False
        watcher.cancel()


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
