"""Caps on the strings a caller sends, applied at the edge before they reach logs, metrics, traces,
error messages or the store.

A request body may be megabytes; nothing the gateway keeps or echoes should be. Values that steer
routing (model, pool, labels) are refused with a 400 naming the limit when too long; values that
are only recorded (the caller's request id) are cut down instead; text echoed in an error message
is clipped.

:func:`routing_hints` is the one place where the headers that steer routing are read; routing itself
reads only the fields it fills in (``required_pool``, ``required_labels``, ``session``).
"""

from __future__ import annotations

from interlock.core.context import RequestContext
from interlock.core.errors import InvalidRequest
from interlock.server.asgi import Scope, header

__all__ = [
    "MAX_CLIENT_REQUEST_ID",
    "MAX_ECHO",
    "MAX_LABELS",
    "MAX_LABEL_TEXT",
    "MAX_MODEL_NAME",
    "MAX_POOL",
    "check_model_name",
    "client_request_id",
    "clip",
    "routing_hints",
]

MAX_MODEL_NAME = 256
MAX_CLIENT_REQUEST_ID = 128
MAX_POOL = 128
MAX_LABELS = 16
MAX_LABEL_TEXT = 128
MAX_ECHO = 80
"""Characters of a caller's value quoted back in an error message."""


def clip(text: str, limit: int = MAX_ECHO) -> str:
    """``text`` cut to ``limit`` characters, marked with ``…`` when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_model_name(model: str) -> str:
    """``model`` when it is short enough to be a model name; else a 400."""
    if len(model) > MAX_MODEL_NAME:
        raise InvalidRequest(
            f"'model' is {len(model)} characters long; the limit is {MAX_MODEL_NAME}.", param="model"
        )
    return model


def client_request_id(scope: Scope) -> str | None:
    """The caller's ``x-request-id``, kept to printable ASCII and ``MAX_CLIENT_REQUEST_ID``
    characters; None when absent or nothing printable is left."""
    given = header(scope, b"x-request-id")
    if not given:
        return None
    if not (given.isascii() and given.isprintable()):
        given = "".join(c for c in given if " " <= c <= "~")
    return given.strip()[:MAX_CLIENT_REQUEST_ID] or None


def routing_hints(ctx: RequestContext, scope: Scope, session_header: str | None) -> None:
    """Where the caller asks its request to go: ``x-interlock-pool`` and ``x-interlock-labels:
    k=v,k2=v2`` restrict it; ``session_header`` (for a model that routes by session) names the
    caller's session, which keeps it on one deployment."""
    if session_header is not None:
        ctx.session = header(scope, session_header.lower().encode("latin-1"))
    pool = header(scope, b"x-interlock-pool")
    if pool and pool.strip():
        ctx.required_pool = _bounded(pool.strip(), MAX_POOL, "x-interlock-pool")
    labels = header(scope, b"x-interlock-labels")
    if not labels:
        return
    items = labels.split(",")
    if len(items) > MAX_LABELS:
        raise InvalidRequest(
            f"x-interlock-labels holds {len(items)} labels; the limit is {MAX_LABELS}.",
            param="x-interlock-labels",
        )
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InvalidRequest(
                f"x-interlock-labels must be a comma-separated list of key=value pairs, got {clip(item)!r}.",
                param="x-interlock-labels",
            )
        name = _bounded(key.strip(), MAX_LABEL_TEXT, "x-interlock-labels")
        ctx.required_labels[name] = _bounded(value.strip(), MAX_LABEL_TEXT, "x-interlock-labels")


def _bounded(value: str, limit: int, param: str) -> str:
    if len(value) > limit:
        raise InvalidRequest(
            f"{param}: a value is {len(value)} characters; the limit is {limit}.", param=param
        )
    return value
