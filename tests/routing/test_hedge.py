"""Hedged requests: who wins, what happens when attempts fail, and that a cancelled caller leaves
no attempt behind and its cancellation is never swallowed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from interlock.core.context import Chunks, Reply, RequestContext
from interlock.core.errors import UpstreamError, UpstreamTimeout
from interlock.routing.hedge import hedged


class Stream:
    """A reply's stream that records whether it was closed."""

    def __init__(self) -> None:
        self.closed = False

    def __aiter__(self) -> Stream:
        return self

    async def __anext__(self) -> Chunks:
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self.closed = True


class Attempt:
    """An attempt that waits for ``go``, then answers with a stream or fails; records how it ended.
    With ``slow_to_cancel``, it holds on to a cancellation until ``let_go`` is set, as an attempt
    does that is still closing its upstream connection."""

    def __init__(self, fail: Exception | None = None, slow_to_cancel: bool = False) -> None:
        self.go = asyncio.Event()
        self.started = False
        self.ended = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.let_go = asyncio.Event()
        self.fail = fail
        self.slow_to_cancel = slow_to_cancel
        self.stream = Stream()

    async def run(self) -> Reply:
        self.started = True
        try:
            await self.go.wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            if self.slow_to_cancel:
                await self.let_go.wait()
            raise
        finally:
            self.ended.set()
        if self.fail is not None:
            raise self.fail
        return Reply(stream=self.stream)


def context() -> RequestContext:
    return RequestContext("r1", "chat", "m", {}, True)


def backup_of(attempt: Attempt) -> Callable[[], Awaitable[Reply]]:
    return attempt.run


async def started(task: asyncio.Task[Reply], attempt: Attempt) -> None:
    """Let the loop run until ``attempt`` has begun."""
    while not attempt.started:
        await asyncio.sleep(0)
        assert not task.done()


async def test_the_primary_answers_before_the_delay_and_no_backup_starts() -> None:
    primary, backup = Attempt(), Attempt()
    primary.go.set()
    ctx = context()
    reply = await hedged(ctx, 60, primary.run(), backup_of(backup))
    assert reply.stream is primary.stream and not primary.stream.closed
    assert not backup.started and not ctx.hedged


async def test_a_primary_that_fails_before_the_delay_raises_without_a_backup() -> None:
    primary, backup = Attempt(fail=UpstreamTimeout("primary timed out")), Attempt()
    primary.go.set()
    ctx = context()
    with pytest.raises(UpstreamTimeout, match="primary timed out"):
        await hedged(ctx, 60, primary.run(), backup_of(backup))
    assert not backup.started and not ctx.hedged


async def test_the_backup_wins_and_the_primary_is_cancelled() -> None:
    primary, backup = Attempt(), Attempt()
    backup.go.set()
    ctx = context()
    reply = await hedged(ctx, 0, primary.run(), backup_of(backup))
    assert reply.stream is backup.stream and ctx.hedged
    assert primary.cancelled.is_set()


async def test_a_backup_that_fails_leaves_the_primary_to_win_later() -> None:
    primary, backup = Attempt(), Attempt(fail=UpstreamError("backup down"))
    backup.go.set()
    task = asyncio.create_task(hedged(context(), 0, primary.run(), backup_of(backup)))
    await backup.ended.wait()
    await asyncio.sleep(0)  # hedged() sees the failure, and goes on waiting for the primary
    assert not task.done()
    primary.go.set()
    reply = await task
    assert reply.stream is primary.stream and not primary.stream.closed


async def test_when_both_attempts_fail_the_primary_error_is_raised() -> None:
    primary = Attempt(fail=UpstreamTimeout("primary timed out"))
    backup = Attempt(fail=UpstreamError("backup down"))
    task = asyncio.create_task(hedged(context(), 0, primary.run(), backup_of(backup)))
    await started(task, backup)
    backup.go.set()
    primary.go.set()
    with pytest.raises(UpstreamTimeout, match="primary timed out"):
        await task


async def test_no_backup_available_means_waiting_for_the_primary() -> None:
    primary = Attempt()
    ctx = context()
    task = asyncio.create_task(hedged(ctx, 0, primary.run(), lambda: None))
    await started(task, primary)
    primary.go.set()
    assert (await task).stream is primary.stream
    assert not ctx.hedged


async def test_when_both_answer_together_the_loser_stream_is_closed() -> None:
    primary, backup = Attempt(), Attempt()
    task = asyncio.create_task(hedged(context(), 0, primary.run(), backup_of(backup)))
    await started(task, backup)
    primary.go.set()
    backup.go.set()
    reply = await task
    assert reply.stream is primary.stream and not primary.stream.closed
    assert backup.stream.closed


@pytest.mark.parametrize("hedging", [False, True], ids=["during-the-delay", "while-racing"])
async def test_a_cancelled_caller_cancels_every_attempt(hedging: bool) -> None:
    primary, backup = Attempt(), Attempt()
    task = asyncio.create_task(hedged(context(), 0 if hedging else 60, primary.run(), backup_of(backup)))
    await started(task, backup if hedging else primary)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert primary.cancelled.is_set()
    assert backup.cancelled.is_set() == hedging


async def test_a_caller_cancelled_while_a_loser_winds_down_is_cancelled() -> None:
    """The caller's cancellation arrives while the loser is still closing its connection: it must
    reach the caller (not be taken for the loser's own), and the winner's stream, which nobody
    will read now, is closed."""
    primary, backup = Attempt(), Attempt(slow_to_cancel=True)
    task = asyncio.create_task(hedged(context(), 0, primary.run(), backup_of(backup)))
    await started(task, backup)
    primary.go.set()
    await backup.cancelled.wait()  # the primary has won; the backup is winding down
    task.cancel()
    backup.let_go.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert primary.stream.closed
