"""The prompt an engine sees: chat messages (and tool definitions) rendered into one string.

Like a chat template, every message becomes a role marker and its text; tool calls, tool results and
the text parts of content arrays are all part of it, so they all cost prompt tokens and all take part
in prefix caching. Non-text parts (images, audio, files) stand in as a short marker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from interlock.sim.responses import ApiError

__all__ = ["RenderedMessage", "render_prompt", "text_of"]

_ROLES = ("system", "assistant", "user", "function", "tool", "developer")


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    """One validated message: its role, its text, and its rendering in the prompt."""

    role: str
    text: str
    rendered: str


def text_of(content: object, param: str) -> str:
    """The text of a message's ``content``: a string, or the text parts of an array of parts."""
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise ApiError.invalid_type(param, "one of a string or array of objects", content)
    texts = []
    for i, part in enumerate(content):
        if not isinstance(part, dict):
            raise ApiError.invalid_type(f"{param}[{i}]", "an object", part)
        kind = part.get("type")
        if kind == "text" or (kind is None and "text" in part):
            text = part.get("text")
            if not isinstance(text, str):
                raise ApiError.invalid_type(f"{param}[{i}].text", "a string", text)
            texts.append(text)
        else:
            # Images, audio and files have no text; an engine still spends tokens on them.
            texts.append(f"[{kind}]")
    return "\n".join(texts)


def _render_message(index: int, message: object) -> RenderedMessage:
    param = f"messages[{index}]"
    if not isinstance(message, dict):
        raise ApiError.invalid_type(param, "an object", message)
    role = message.get("role")
    if role is None:
        raise ApiError.missing(f"{param}.role")
    if role not in _ROLES:
        supported = ", ".join(f"'{r}'" for r in _ROLES[:-1]) + f", and '{_ROLES[-1]}'"
        raise ApiError(
            400,
            f"Invalid value: {orjson.dumps(role).decode()}. Supported values are: {supported}.",
            param=f"{param}.role",
            code="invalid_value",
        )
    text = text_of(message.get("content"), f"{param}.content")
    lines = [f"<|{role}|>", text]
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            lines.append(f"call {function.get('name')}({function.get('arguments')})")
    if role == "tool":
        lines[1] = f"[{message.get('tool_call_id')}] {text}"
    return RenderedMessage(role, text, "\n".join(lines))


def render_prompt(messages: Sequence[Any], tools: object = None) -> tuple[str, RenderedMessage]:
    """The prompt for ``messages`` (validated on the way, raising :class:`ApiError`) and the last message."""
    rendered = [_render_message(i, m) for i, m in enumerate(messages)]
    parts = [message.rendered for message in rendered]
    if tools is not None:
        parts.insert(0, "<|tools|>\n" + orjson.dumps(tools).decode())
    parts.append("<|assistant|>")
    return "\n".join(parts), rendered[-1]
