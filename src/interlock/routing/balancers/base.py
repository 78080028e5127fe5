"""The balancer interface and the routing hints a request carries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from interlock.routing.latency import LatencyKind
from interlock.routing.snapshot import Deployment

__all__ = ["Balancer", "RouteHints", "prompt_chars", "prompt_text"]


@dataclass(slots=True)
class RouteHints:
    """What a balancer may know about the request beyond the model name."""

    session: str | None = None
    body: Mapping[str, Any] | None = None
    prompt: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def latency_kind(self) -> LatencyKind:
        """Which latency judges a request like this one: a stream's first token, a complete
        answer's time per token, or an embeddings call's time."""
        body = self.body or {}
        if body.get("stream") is True:
            return "first_token"
        return "answer" if "messages" in body else "embedding"

    def prompt_text(self) -> str:
        """The prompt as one string (rendered once, on first use)."""
        if self.prompt is None:
            self.prompt = prompt_text(self.body or {})
        return self.prompt


def prompt_text(body: Mapping[str, Any]) -> str:
    """Render a chat body's messages (or an embeddings input) into one string, in order."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        value = body.get("input")
        return value if isinstance(value, str) else ""
    parts: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        parts.append(str(message.get("role", "")))
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(
                str(part.get("text", "")) for part in content if isinstance(part, dict) and "text" in part
            )
    return "\n".join(parts)


def prompt_chars(body: Mapping[str, Any]) -> int:
    """``len(prompt_text(body))``, without building the string (a long prompt is measured on every
    attempt; copying it each time would cost as much as the prompt is long)."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        value = body.get("input")
        return len(value) if isinstance(value, str) else 0
    total = parts = 0
    for message in messages:
        if not isinstance(message, dict):
            continue
        total += len(str(message.get("role", "")))
        parts += 1
        content = message.get("content")
        if isinstance(content, str):
            total += len(content)
            parts += 1
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and "text" in part:
                    total += len(str(part.get("text", "")))
                    parts += 1
    return total + max(parts - 1, 0)  # the newlines between the parts


class Balancer(Protocol):
    """Chooses one of ``candidates`` (never empty) for a request."""

    def choose(self, candidates: Sequence[Deployment], hints: RouteHints) -> Deployment: ...
