"""Server-sent events, parsed from bytes as they arrive."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SseEvent", "SseParser", "SseTooLarge"]

MAX_EVENT_BYTES = 16 * 1024 * 1024
"""An event (or an unterminated line) larger than this is an upstream fault, not something to buffer."""


class SseTooLarge(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class SseEvent:
    event: str | None
    data: bytes


class SseParser:
    """Feed it the body in pieces of any size; it returns the events each piece completes.

    Lines end in LF or CRLF; ``data:`` lines of one event are joined with LF; ``event:`` names the
    event; comments (``:``) and unknown fields are ignored, as the SSE specification says.
    """

    __slots__ = ("_data", "_event", "_rest", "_size")

    def __init__(self) -> None:
        self._rest = b""
        self._event: str | None = None
        self._data: list[bytes] = []
        self._size = 0

    def feed(self, chunk: bytes) -> list[SseEvent]:
        buf = self._rest + chunk if self._rest else chunk
        events: list[SseEvent] = []
        start = 0
        find = buf.find
        while (end := find(b"\n", start)) >= 0:
            line = buf[start : end - 1] if end > start and buf[end - 1] == 13 else buf[start:end]
            start = end + 1
            if not line:
                if self._data:
                    events.append(SseEvent(self._event, b"\n".join(self._data)))
                self._event, self._data, self._size = None, [], 0
            elif line.startswith(b"data:"):
                value = line[6:] if line[5:6] == b" " else line[5:]
                self._data.append(value)
                self._size += len(value)
                if self._size > MAX_EVENT_BYTES:
                    raise SseTooLarge("a stream event is larger than 16 MiB")
            elif line.startswith(b"event:"):
                self._event = line[6:].strip().decode("utf-8", errors="replace")
        self._rest = buf[start:] if start < len(buf) else b""
        if len(self._rest) > MAX_EVENT_BYTES:
            raise SseTooLarge("a stream line is longer than 16 MiB")
        return events

    def close(self) -> list[SseEvent]:
        """Events left when the body ends without a final blank line."""
        events = self.feed(b"\n") if self._rest else []
        if self._data:
            events.append(SseEvent(self._event, b"\n".join(self._data)))
            self._event, self._data, self._size = None, [], 0
        return events
