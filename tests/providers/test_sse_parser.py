"""The server-sent events parser: the specification's line rules, its limits, and work that stays
linear in the stream's size however the stream is cut."""

from __future__ import annotations

import tracemalloc

import pytest

from interlock.providers.sse import SseEvent, SseParser, SseTooLarge


def test_sse_parser_limits_and_a_missing_final_blank_line() -> None:
    parser = SseParser()
    assert parser.feed(b"data: a") == []
    assert [e.data for e in parser.close()] == [b"a"]
    with pytest.raises(SseTooLarge):
        SseParser().feed(b"data: " + b"x" * (17 * 1024 * 1024))


def test_an_event_growing_past_the_limit_a_piece_at_a_time_is_refused() -> None:
    parser = SseParser()
    piece = b"x" * (1024 * 1024)
    parser.feed(b"data: ")
    with pytest.raises(SseTooLarge):
        for _ in range(17):
            parser.feed(piece)


SSE_STREAM = (
    b": keep-alive comment\r\n\r\n"
    b'event: message_start\r\ndata: {"a": 1}\r\n\r\n'
    b"data: line one\ndata: line two\n\n"
    b"data:no-space\rdata:  two spaces\r\r"
    b"id: 7\nretry: 10\ndata: [DONE]\n\n"
    b"\n\n\n"
    b"data: tail without blank line"
)
SSE_EXPECTED = [
    ("message_start", b'{"a": 1}'),
    (None, b"line one\nline two"),
    (None, b"no-space\n two spaces"),
    (None, b"[DONE]"),
    (None, b"tail without blank line"),
]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, len(SSE_STREAM)])
def test_sse_parser_gives_the_same_events_however_the_body_is_split(size: int) -> None:
    parser = SseParser()
    events = []
    for start in range(0, len(SSE_STREAM), size):
        events.extend(parser.feed(SSE_STREAM[start : start + size]))
    events.extend(parser.close())
    assert [(e.event, e.data) for e in events] == SSE_EXPECTED


def test_an_event_ended_by_carriage_returns_is_given_at_once() -> None:
    """A CR ending a piece may be half of a CRLF, but it ends the line either way: the event it
    completes is not held back until the next piece arrives."""
    parser = SseParser()
    assert parser.feed(b"data: a\r\r") == [SseEvent(None, b"a")]
    assert parser.feed(b"\ndata: b\r\n\r") == [SseEvent(None, b"b")]
    assert parser.feed(b"\n") == []
    assert parser.feed(b"data: c\r\n\r\n") == [SseEvent(None, b"c")]


def allocated_while_feeding(parser: SseParser, pieces: list[bytes]) -> tuple[int, list[SseEvent]]:
    """The bytes ``parser`` allocates while it works through ``pieces``, summed over the calls
    (what each call allocates and frees again counts too): a count of work, not a time."""
    events: list[SseEvent] = []
    total = 0
    tracemalloc.start()
    try:
        for piece in pieces:
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            events.extend(parser.feed(piece))
            total += tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    return total, events


@pytest.mark.parametrize(
    ("line_end", "event_bytes", "piece_size"),
    [(b"\n", 2 * 1024 * 1024, 997), (b"\r\n", 2 * 1024 * 1024, 997), (b"\n", 32 * 1024, 1)],
    ids=["lf-small-pieces", "crlf-small-pieces", "lf-single-bytes"],
)
def test_work_stays_linear_when_a_large_event_arrives_in_small_pieces(
    line_end: bytes, event_bytes: int, piece_size: int
) -> None:
    line = b"data: " + b"x" * 1000 + line_end
    lines = event_bytes // len(line)
    stream = line * lines + line_end
    pieces = [stream[i : i + piece_size] for i in range(0, len(stream), piece_size)]

    allocated, events = allocated_while_feeding(SseParser(), pieces)

    assert events == [SseEvent(None, b"\n".join([b"x" * 1000] * lines))]
    # gluing each piece to all that came before would allocate about len(stream)² / piece_size bytes:
    # about 4 GiB here; a linear parser allocates a few times the stream plus a little per piece
    assert allocated < 8 * len(stream) + 1024 * len(pieces)
