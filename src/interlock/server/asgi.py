"""Small ASGI helpers for the hot routes: request ids, keys, reading bodies under a limit, sending JSON."""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from interlock.core.errors import BodyTooLarge, InvalidRequest

__all__ = [
    "DISCONNECT_WATCH",
    "DisconnectWatch",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "api_key_from",
    "cancel_on_disconnect",
    "check_declared_length",
    "declared_length",
    "header",
    "new_request_id",
    "read_body",
    "read_json_object",
    "request_id_for",
    "send_bytes",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# unique across processes (64 random bits per process) and cheap per request (a counter, not a
# syscall). The request log's primary key: never taken from the caller.
_ID_PREFIX = "req_" + secrets.token_hex(8) + "_"
_ID_COUNTER = itertools.count(1)
_SCOPE_ID = "interlock.request_id"


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of header ``name`` (lower-case bytes), decoded as latin-1."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def new_request_id() -> str:
    """A fresh gateway request id, unique across processes."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):x}"


def request_id_for(scope: Scope) -> str:
    """The gateway's id for this request: made on first use, the same on every later call. What
    the caller sent as ``x-request-id`` is never used (see ``caller_input.client_request_id``)."""
    found = scope.get(_SCOPE_ID)
    if isinstance(found, str):
        return found
    made = scope[_SCOPE_ID] = new_request_id()
    return made


def api_key_from(scope: Scope) -> str | None:
    """The caller's key from ``Authorization: Bearer`` or ``x-api-key``."""
    auth = header(scope, b"authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return header(scope, b"x-api-key")


def declared_length(scope: Scope) -> int | None:
    """The ``Content-Length`` the client declared, if it is a number."""
    declared = header(scope, b"content-length")
    if declared is None or not declared.isascii() or not declared.isdigit():
        return None
    return int(declared) if len(declared) <= 18 else _HUGE  # int() refuses 4,300+ digits


_HUGE = 1 << 63


def check_declared_length(scope: Scope, limit: int) -> None:
    """``BodyTooLarge`` when the declared ``Content-Length`` exceeds ``limit``: refused unread."""
    declared = declared_length(scope)
    if declared is not None and declared > limit:
        raise BodyTooLarge(f"Request body is {declared} bytes; the limit is {limit} bytes.")


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole request body; ``BodyTooLarge`` as soon as it is known to exceed ``limit``."""
    check_declared_length(scope, limit)
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


DISCONNECT_WATCH = "interlock.disconnect"
"""Scope key of the request's :class:`DisconnectWatch`, where the server provides one."""


class DisconnectWatch:
    """Told by the connection when its client goes away; cancels the task serving the request.

    The gateway's own HTTP protocol (``server/edge.py``) puts one in every request's scope, so that
    noticing a disconnect costs nothing per request: no watcher task reading ``receive``.
    """

    __slots__ = ("fired", "task")

    def __init__(self) -> None:
        self.fired = False
        self.task: asyncio.Task[Any] | None = None

    def fire(self) -> None:
        if not self.fired:
            self.fired = True
            if self.task is not None:
                self.task.cancel()


async def cancel_on_disconnect(scope: Scope, receive: Receive, work: Callable[[], Awaitable[None]]) -> bool:
    """Run ``work`` in the current task; cancel it if the client disconnects first.

    Returns False when the client went away. Runs in the current task because this sits on every
    request's path; where the server gives no :class:`DisconnectWatch`, one watcher task reads
    ``receive`` for the disconnect.
    """
    task = asyncio.current_task()
    assert task is not None
    watch = scope.get(DISCONNECT_WATCH)
    if isinstance(watch, DisconnectWatch):
        return await _watched(watch, task, work)
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


async def _watched(
    watch: DisconnectWatch, task: asyncio.Task[Any], work: Callable[[], Awaitable[None]]
) -> bool:
    if watch.fired:
        return False
    watch.task = task
    try:
        await work()
        return True
    except asyncio.CancelledError:
        if watch.fired and task.uncancel() == 0:
            return False
        raise
    finally:
        watch.task = None


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
