"""Server-sent events, parsed from bytes as they arrive, and turned into batches of chunks."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import NamedTuple

from interlock.core.context import Chunks, has_output
from interlock.core.errors import GatewayError, UpstreamStreamBroken

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

    Work stays linear in the size of the stream however it is cut: each piece is scanned once, an
    unfinished event grows in place, and is joined once, when its blank line arrives. (Gluing each
    piece to everything held and searching the whole again would cost the square of an event's size
    when it arrives a few bytes at a time.)
    """

    __slots__ = ("_pending", "_skip_lf")

    def __init__(self) -> None:
        self._pending = bytearray()
        """The unfinished event, line ends already made LF."""
        self._skip_lf = False
        """The last piece ended in CR: an LF starting the next one belongs to that CRLF."""

    def feed(self, chunk: bytes) -> list[SseEvent]:
        if self._skip_lf or b"\r" in chunk:
            chunk = self._normalise(chunk)
            if not chunk:
                return []
        pending = self._pending
        if not pending:
            blocks = chunk.split(b"\n\n")
        elif pending.endswith(b"\n") and chunk.startswith(b"\n"):  # the blank line straddles pieces
            blocks = [bytes(pending[:-1]), *chunk[1:].split(b"\n\n")]
            pending.clear()
        else:
            end = chunk.find(b"\n\n")
            if end < 0:
                pending += chunk
                self._check_size()
                return []
            pending += chunk[:end]
            blocks = [bytes(pending), *chunk[end + 2 :].split(b"\n\n")]
            pending.clear()
        if rest := blocks.pop():
            pending += rest
            self._check_size()
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
        rest = bytes(self._pending).rstrip(b"\n")
        self._pending.clear()
        event = _parse_block(rest) if rest else None
        return [event] if event is not None else []

    def _normalise(self, chunk: bytes) -> bytes:
        """``chunk`` with CRLF and CR line ends made LF."""
        if self._skip_lf:
            self._skip_lf = False
            if chunk.startswith(b"\n"):
                chunk = chunk[1:]
        if b"\r" in chunk:
            self._skip_lf = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        return chunk

    def _check_size(self) -> None:
        if len(self._pending) > MAX_EVENT_BYTES:
            raise SseTooLarge("a stream event is larger than 16 MiB")


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
