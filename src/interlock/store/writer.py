"""The background writer that takes request-log writes off the request path.

``submit`` appends to a bounded buffer and returns; a background task drains the buffer in batches.
A slow or dead database therefore never slows or fails a request: when the buffer is full new
records are dropped, and a batch the database keeps refusing is dropped after a few retries. Every
drop is counted in :attr:`RequestLogWriter.stats`. Memory stays bounded by ``capacity`` buffered
records plus one batch in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from interlock.store.requests import RequestRecord

__all__ = ["RequestLogWriter", "RequestSink", "WriterStats"]

_log = logging.getLogger(__name__)
_MAX_ERROR_CHARS = 300


class RequestSink(Protocol):
    """Where batches go; :class:`~interlock.store.requests.RequestLogRepository` is one."""

    async def insert_many(self, records: Sequence[RequestRecord]) -> None:
        """Store ``records`` in one transaction, or raise."""
        ...


@dataclass(frozen=True, slots=True)
class WriterStats:
    """Counters since the writer was made. ``submitted == written + dropped + pending`` always."""

    submitted: int
    written: int
    dropped: int
    failed_batches: int
    """Batches given up on after their retries (their records are counted in ``dropped``)."""
    pending: int
    """Records buffered or in the batch being written now."""
    last_error: str | None = None
    """The last error the database returned, for health pages; ``None`` if there was none."""


class RequestLogWriter:
    """Buffers request records and writes them in batches from a background task.

    Call :meth:`submit` from the event loop's thread (it is not thread-safe). ``batch_size`` and
    ``flush_interval`` set when a batch is written: when that many records wait, or when that much
    time passed since the last drain, whichever comes first. A backlog (a busy loop, a slow database)
    is written up to ``max_batch`` records per transaction (default 8 × ``batch_size``), so the
    writer catches up instead of paying a transaction's round trips for every ``batch_size`` rows.
    A batch gets ``max_retries`` more tries after a failure or after ``attempt_timeout`` seconds
    without an answer, waiting ``retry_backoff`` seconds doubling up to ``max_backoff`` in between,
    and is then dropped.
    """

    def __init__(
        self,
        sink: RequestSink,
        *,
        capacity: int = 10_000,
        batch_size: int = 500,
        max_batch: int | None = None,
        flush_interval: float = 0.5,
        max_retries: int = 3,
        retry_backoff: float = 0.5,
        max_backoff: float = 5.0,
        attempt_timeout: float = 10.0,
    ) -> None:
        if capacity < 1 or batch_size < 1:
            raise ValueError("capacity and batch_size must be at least 1")
        if flush_interval <= 0 or attempt_timeout <= 0:
            raise ValueError("flush_interval and attempt_timeout must be positive")
        if retry_backoff < 0 or max_backoff < 0 or max_retries < 0:
            raise ValueError("max_retries, retry_backoff and max_backoff must not be negative")
        self._sink = sink
        self._capacity = capacity
        self._batch_size = batch_size
        self._max_batch = max(batch_size, max_batch if max_batch is not None else 8 * batch_size)
        self._flush_interval = flush_interval
        self._max_retries = max_retries
        self._retry_backoff = retry_backoff
        self._max_backoff = max_backoff
        self._attempt_timeout = attempt_timeout
        self._buffer: deque[RequestRecord] = deque()
        self._wake = asyncio.Event()
        self._stop_requested = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._submitted = 0
        self._written = 0
        self._dropped = 0
        self._failed_batches = 0
        self._in_flight = 0
        self._last_error: str | None = None

    @property
    def stats(self) -> WriterStats:
        """A snapshot of the counters."""
        return WriterStats(
            submitted=self._submitted,
            written=self._written,
            dropped=self._dropped,
            failed_batches=self._failed_batches,
            pending=len(self._buffer) + self._in_flight,
            last_error=self._last_error,
        )

    @property
    def running(self) -> bool:
        """Whether the background task is running."""
        return self._task is not None and not self._task.done()

    def submit(self, record: RequestRecord) -> None:
        """Queue ``record`` for writing. Never blocks and never raises; drops (counted) when full."""
        self._submitted += 1
        if self._closed or len(self._buffer) >= self._capacity:
            self._dropped += 1
            return
        self._buffer.append(record)
        if len(self._buffer) >= self._batch_size:
            self._wake.set()

    async def start(self) -> None:
        """Start the background task (idempotent)."""
        if self._closed:
            raise RuntimeError("this RequestLogWriter was stopped; make a new one")
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="interlock-request-log-writer")

    # The timeout bounds a graceful flush and then drops what is left; cancelling stop() from
    # outside with asyncio.timeout() would skip that accounting.
    async def stop(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Write what can be written within ``timeout`` seconds, then stop.

        Records still unwritten at the deadline are dropped and counted; later submits are
        dropped too. Safe to call more than once, and without :meth:`start`.
        """
        self._closed = True
        self._stop_requested.set()
        self._wake.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="interlock-request-log-writer")
        _done, pending = await asyncio.wait({self._task}, timeout=timeout)
        if pending:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._drop_buffer()

    async def _run(self) -> None:
        while not self._stop_requested.is_set():
            await self._wait_for_work()
            await self._drain()
        await self._drain()

    async def _wait_for_work(self) -> None:
        if len(self._buffer) >= self._batch_size:
            return
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._flush_interval):
                await self._wake.wait()

    async def _drain(self) -> None:
        while self._buffer:
            count = min(self._max_batch, len(self._buffer))
            batch = [self._buffer.popleft() for _ in range(count)]
            written = await self._write(batch)
            if not written and self._stop_requested.is_set():
                # The database is failing and the deadline is short: don't spend it on more tries.
                self._drop_buffer()

    async def _write(self, batch: list[RequestRecord]) -> bool:
        self._in_flight = len(batch)
        try:
            for attempt in range(self._max_retries + 1):
                if await self._try_insert(batch):
                    self._written += len(batch)
                    return True
                if attempt == self._max_retries or self._stop_requested.is_set():
                    break
                await self._pause(min(self._retry_backoff * 2**attempt, self._max_backoff))
            self._dropped += len(batch)
            self._failed_batches += 1
            _log.warning("request log: dropped a batch of %d records: %s", len(batch), self._last_error)
            return False
        except asyncio.CancelledError:
            self._dropped += len(batch)
            raise
        finally:
            self._in_flight = 0

    async def _try_insert(self, batch: list[RequestRecord]) -> bool:
        try:
            # A database that stops answering (not refusing) would otherwise hold the batch, and
            # the whole writer, until TCP gives up minutes later.
            async with asyncio.timeout(self._attempt_timeout):
                await self._sink.insert_many(batch)
        except TimeoutError:
            self._last_error = f"TimeoutError: no answer within {self._attempt_timeout:g} s"
            return False
        except Exception as exc:
            # Any failure, not only StoreError: the writer must outlive whatever the sink does.
            self._last_error = f"{type(exc).__name__}: {exc}"[:_MAX_ERROR_CHARS]
            return False
        return True

    async def _pause(self, seconds: float) -> None:
        # Returns early when stop() is called, so a backoff never eats the stop deadline.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stop_requested.wait()

    def _drop_buffer(self) -> None:
        self._dropped += len(self._buffer)
        self._buffer.clear()
