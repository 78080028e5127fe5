"""Checks that the Anthropic translation makes the same way in both directions of travel: the front
door's (:mod:`interlock.providers.anthropic_inbound`) and the adapter's
(:mod:`interlock.providers.anthropic_outbound`), requests and replies alike."""

from __future__ import annotations

from typing import Any, TypeGuard

import orjson

from interlock.core.errors import InvalidRequest

__all__ = ["copy_top_k", "is_int", "json_object", "number", "required_messages"]


def is_int(value: Any) -> TypeGuard[int]:
    """True for an ``int`` that is not a ``bool``: JSON ``true`` is no count."""
    return isinstance(value, int) and not isinstance(value, bool)


def number(value: Any, name: str) -> float | int:
    """``value`` if it is a JSON number; otherwise ``InvalidRequest`` naming the field ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(f"'{name}' must be a number", param=name)
    return value


def required_messages(body: dict[str, Any]) -> list[Any]:
    """The request's ``messages``, which both APIs require to be a non-empty list."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty list", param="messages")
    return messages


def copy_top_k(body: dict[str, Any], out: dict[str, Any]) -> None:
    """Copy ``top_k``, which both APIs spell alike, into ``out`` once it is checked to be an integer."""
    if body.get("top_k") is not None:
        if not is_int(body["top_k"]):
            raise InvalidRequest("'top_k' must be an integer", param="top_k")
        out["top_k"] = body["top_k"]


def json_object(text: str) -> dict[str, Any] | None:
    """The JSON object that ``text`` encodes (OpenAI tool-call arguments travel as such strings), or
    ``None`` when it encodes something else or is not JSON at all."""
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None
