"""Server-sent events, parsed from bytes as they arrive, and turned into batches of chunks."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import NamedTuple

from interlock.errors import GatewayError, UpstreamStreamBroken
from interlock.gateway.context import Chunks, has_output

__all__ = ["SseEvent", "SseParser", "SseTooLarge", "chunk_batches"]

MAX_EVENT_BYTES = 16 * 1024 * 1024
"""An event (or an unterminated line) larger than this is an upstream fault, not something to buffer."""


class SseTooLarge(ValueError):
    pass


class SseEvent(NamedTuple):
    event: str | None
    data: bytes


class SseParser:
    """Feed it the body in pieces of any size; it returns the events each piece completes.

    Lines end in LF, CRLF or CR; ``data:`` lines of one event are joined with LF; ``event:`` names
    the event; comments (``:``) and unknown fields are ignored, as the SSE specification says. An
    event is parsed once its closing blank line has arrived, and the common shape — one ``data:``
    line — takes a fast path, since this runs for every token of every stream.
    """

    __slots__ = ("_rest",)

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, chunk: bytes) -> list[SseEvent]:
        buf = self._rest + chunk if self._rest else chunk
        if b"\r" in buf:
            # a CR at the very end may be the first half of a CRLF: keep it for the next piece
            held = buf.endswith(b"\r")
            buf = buf[:-1] if held else buf
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if held:
                buf += b"\r"
        blocks = buf.split(b"\n\n")
        self._rest = blocks.pop()
        if len(self._rest) > MAX_EVENT_BYTES:
            raise SseTooLarge("a stream event is larger than 16 MiB")
        events: list[SseEvent] = []
        for block in blocks:
            if block[:6] == b"data: " and b"\n" not in block:
                events.append(SseEvent(None, block[6:]))
            elif block:
                event = _parse_block(block)
                if event is not None:
                    events.append(event)
        return events

    def close(self) -> list[SseEvent]:
        """The event left when the body ends without a final blank line."""
        rest, self._rest = self._rest.rstrip(b"\r\n"), b""
        event = _parse_block(rest.replace(b"\r\n", b"\n").replace(b"\r", b"\n")) if rest else None
        return [event] if event is not None else []


def _parse_block(block: bytes) -> SseEvent | None:
    name: str | None = None
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if line.startswith(b"data:"):
            data.append(line[6:] if line[5:6] == b" " else line[5:])
        elif line.startswith(b"event:"):
            name = line[6:].strip().decode("utf-8", errors="replace")
    return SseEvent(name, b"\n".join(data)) if data else None


async def chunk_batches(
    batches: AsyncGenerator[list[SseEvent], None],
    convert: Callable[[SseEvent], tuple[Chunks, bool]],
    incomplete: str,
) -> AsyncIterator[Chunks]:
    """The adapters' stream loop: event batches in, chunk batches out.

    ``convert`` gives the chunks one event makes and whether it completes the stream; a stream that
    ends before that raises ``UpstreamStreamBroken(incomplete)``. The chunks of one read leave as one
    batch, except that the first chunk with output leaves before the rest of its read is even
    converted; when ``convert`` raises, the chunks converted before the failure are passed on first.
    """
    waiting_for_output = True
    try:
        async for events in batches:
            chunks: Chunks = []
            for event in events:
                try:
                    new, done = convert(event)
                except GatewayError:
                    if chunks:
                        yield chunks
                    raise
                chunks.extend(new)
                if done:
                    if chunks:
                        yield chunks
                    return
                if waiting_for_output and any(has_output(chunk) for chunk in new):
                    waiting_for_output = False
                    yield chunks
                    chunks = []
            if chunks:
                yield chunks
    finally:
        await batches.aclose()
    raise UpstreamStreamBroken(incomplete)
