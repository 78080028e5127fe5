"""Redaction of secrets in stored request and response bodies."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["redact", "redact_text"]

_PATTERNS = [
    re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}"),  # OpenAI-style and Interlock keys
    re.compile(r"\bsk-ant-[A-Za-z0-9_\-]{16,}"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),  # AWS access key ids
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"),  # GitHub tokens
    re.compile(r"\bxox[abpr]-[A-Za-z0-9\-]{10,}"),  # Slack tokens
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._\-~+/]{16,}=*"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"(?i)\b(password|passwd|secret|api[_-]?key|token)\s*[:=]\s*\S+"),
]
_REPLACEMENT = "[REDACTED]"


def redact_text(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(_REPLACEMENT, text)
    return text


def redact(value: Any, limit: int = 16_384) -> Any:
    """A copy of ``value`` with secrets in its strings replaced and long strings cut at ``limit``."""
    if isinstance(value, str):
        cleaned = redact_text(value)
        return cleaned if len(cleaned) <= limit else cleaned[:limit] + "…[truncated]"
    if isinstance(value, dict):
        return {k: redact(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, limit) for v in value]
    return value
