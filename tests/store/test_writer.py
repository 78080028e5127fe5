"""The request-log writer: batches, a bounded buffer, and a dead database that costs nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import pytest

from interlock.store import RequestLogWriter, RequestRecord, RequestSink, Store, WriterStats

# Polling guard for conditions the background task reaches on its own; a bound, not a measurement.
GUARD_S = 10.0
POLL_S = 0.01


def make(i: int) -> RequestRecord:
    return RequestRecord(f"req-{i}", datetime.now(UTC), "gpt-4o", "chat", 200)


class Spy:
    """Delegates to a real sink and remembers batch sizes; can fail its first calls."""

    def __init__(self, sink: RequestSink, *, failures: int = 0) -> None:
        self.sink = sink
        self.failures = failures
        self.batches: list[int] = []

    async def insert_many(self, records: Sequence[RequestRecord]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionResetError("simulated outage")
        await self.sink.insert_many(records)
        self.batches.append(len(records))


class Hanging:
    """A database that never answers."""

    def __init__(self) -> None:
        self.called = asyncio.Event()

    async def insert_many(self, records: Sequence[RequestRecord]) -> None:
        self.called.set()
        await asyncio.Event().wait()


async def wait_until(writer: RequestLogWriter, done: Callable[[WriterStats], bool]) -> WriterStats:
    for _ in range(int(GUARD_S / POLL_S)):
        if done(writer.stats):
            return writer.stats
        await asyncio.sleep(POLL_S)
    raise AssertionError(f"writer never reached the expected state: {writer.stats}")


def balanced(stats: WriterStats) -> bool:
    return stats.submitted == stats.written + stats.dropped + stats.pending


async def test_writes_in_batches_of_at_most_max_batch(store: Store) -> None:
    spy = Spy(store.requests)
    writer = RequestLogWriter(spy, batch_size=100, max_batch=100, flush_interval=60)
    for i in range(250):
        writer.submit(make(i))
    await writer.start()
    await writer.stop()

    assert spy.batches == [100, 100, 50]
    assert writer.stats == WriterStats(submitted=250, written=250, dropped=0, failed_batches=0, pending=0)
    assert len(await store.requests.query(limit=1000)) == 250


async def test_a_backlog_is_written_in_larger_transactions(store: Store) -> None:
    spy = Spy(store.requests)
    writer = RequestLogWriter(spy, batch_size=10, flush_interval=60)
    for i in range(250):
        writer.submit(make(i))
    await writer.start()
    await writer.stop()

    assert spy.batches == [80, 80, 80, 10]  # max_batch defaults to 8 x batch_size
    assert len(await store.requests.query(limit=1000)) == 250


async def test_a_full_batch_is_written_without_waiting_for_the_interval(store: Store) -> None:
    spy = Spy(store.requests)
    writer = RequestLogWriter(spy, batch_size=10, flush_interval=3600)
    await writer.start()
    for i in range(10):
        writer.submit(make(i))
    stats = await wait_until(writer, lambda s: s.written == 10)
    await writer.stop()
    assert spy.batches == [10]
    assert stats.pending == 0


async def test_a_partial_batch_is_written_when_the_interval_passes(store: Store) -> None:
    writer = RequestLogWriter(store.requests, batch_size=500, flush_interval=0.05)
    await writer.start()
    for i in range(3):
        writer.submit(make(i))
    stats = await wait_until(writer, lambda s: s.written == 3)
    assert writer.running
    await writer.stop()
    assert stats.dropped == 0
    assert len(await store.requests.query()) == 3


async def test_a_full_buffer_drops_and_counts_new_records(store: Store) -> None:
    writer = RequestLogWriter(store.requests, capacity=10, batch_size=4)
    for i in range(25):
        writer.submit(make(i))
    assert writer.stats == WriterStats(submitted=25, written=0, dropped=15, failed_batches=0, pending=10)

    await writer.start()
    await writer.stop()
    assert writer.stats == WriterStats(submitted=25, written=10, dropped=15, failed_batches=0, pending=0)
    assert sorted(r.request_id for r in await store.requests.query()) == sorted(f"req-{i}" for i in range(10))


async def test_a_failed_batch_is_retried_then_written(store: Store) -> None:
    spy = Spy(store.requests, failures=2)
    writer = RequestLogWriter(spy, batch_size=5, max_retries=3, retry_backoff=0.001)
    for i in range(5):
        writer.submit(make(i))
    await writer.start()
    stats = await wait_until(writer, lambda s: s.written == 5)
    await writer.stop()
    assert (stats.dropped, stats.failed_batches) == (0, 0)
    assert stats.last_error is not None
    assert "simulated outage" in stats.last_error
    assert spy.batches == [5]


async def test_an_attempt_without_answer_is_abandoned_and_counted() -> None:
    sink = Hanging()
    writer = RequestLogWriter(sink, batch_size=5, max_retries=1, retry_backoff=0.001, attempt_timeout=0.01)
    for i in range(5):
        writer.submit(make(i))
    await writer.start()
    stats = await wait_until(writer, lambda s: s.failed_batches == 1)
    await writer.stop()
    assert (stats.dropped, stats.written, stats.pending) == (5, 0, 0)
    assert stats.last_error is not None
    assert stats.last_error.startswith("TimeoutError")


async def test_dead_database_drops_and_counts_but_never_raises(
    backend: str, dead_pg_url: str, dead_password: str, unopenable_sqlite_url: str
) -> None:
    url = dead_pg_url if backend == "postgresql" else unopenable_sqlite_url
    store = await Store.open(url, migrate=False)
    writer = RequestLogWriter(
        store.requests, capacity=50, batch_size=10, max_batch=10, max_retries=1, retry_backoff=0.001
    )
    try:
        await writer.start()
        for i in range(80):
            writer.submit(make(i))
        stats = await wait_until(writer, lambda s: s.failed_batches >= 2)
        assert balanced(stats)
        assert stats.written == 0
        assert stats.dropped >= 30 + 20  # 30 over capacity, then two failed batches of 10
        assert stats.last_error is not None
        assert "StoreUnavailable" in stats.last_error
        assert dead_password not in stats.last_error
        await writer.stop(timeout=1.0)
    finally:
        await store.close()
    assert writer.stats.pending == 0
    assert writer.stats.dropped == 80
    assert not writer.running


async def test_stop_gives_up_on_a_hanging_database_and_counts_the_loss() -> None:
    sink = Hanging()
    writer = RequestLogWriter(sink, batch_size=10)
    for i in range(25):
        writer.submit(make(i))
    await writer.start()
    async with asyncio.timeout(GUARD_S):
        await sink.called.wait()
    assert writer.stats.pending == 25
    # The guard only keeps a broken stop() from hanging the suite; stop() must return on its own.
    async with asyncio.timeout(GUARD_S):
        await writer.stop(timeout=0.05)
    assert writer.stats == WriterStats(submitted=25, written=0, dropped=25, failed_batches=0, pending=0)
    assert not writer.running


async def test_stop_without_start_flushes_and_later_submits_are_dropped(store: Store) -> None:
    writer = RequestLogWriter(store.requests)
    writer.submit(make(1))
    await writer.stop()
    writer.submit(make(2))
    await writer.stop()
    assert writer.stats == WriterStats(submitted=2, written=1, dropped=1, failed_batches=0, pending=0)
    with pytest.raises(RuntimeError):
        await writer.start()
    assert [r.request_id for r in await store.requests.query()] == ["req-1"]


@pytest.mark.parametrize(
    "kwargs",
    [{"capacity": 0}, {"batch_size": 0}, {"flush_interval": 0}, {"max_retries": -1}, {"attempt_timeout": 0}],
)
def test_bad_settings_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RequestLogWriter(Hanging(), **kwargs)  # type: ignore[arg-type]
