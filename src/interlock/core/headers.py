"""What may go into an HTTP header line: one rule for the config check and the upstream client."""

from __future__ import annotations

__all__ = ["header_problem"]


def header_problem(name: str, value: str) -> str | None:
    """Why ``name: value`` cannot be sent as a header (it could split the header block), or None."""
    if not name or not name.isascii() or any(c in name for c in " :\r\n\0"):
        return f"{name!r} is not a valid header name"
    if any(c in value for c in "\r\n\0"):
        return f"the value of {name!r} contains a line break or NUL"
    return None
