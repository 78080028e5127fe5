"""Hedged requests: when the first attempt is slow to start, race a second and keep the winner.

The first attempt runs alone for ``delay`` (the deployment's recent p95 time to first token). If it
has produced nothing by then, a second attempt starts on another deployment; whichever produces its
first token (or complete answer) first wins, and the other is cancelled — its upstream connection
closed, so the loser stops generating. If one fails, the other is awaited.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from interlock.gateway.context import Reply, RequestContext

__all__ = ["hedged"]


async def hedged(
    ctx: RequestContext,
    delay: float,
    first: Coroutine[Any, Any, Reply],
    second: Callable[[], Awaitable[Reply] | None],
) -> Reply:
    """Run ``first``; after ``delay`` without a result, race ``second()`` against it (unless it
    returns None: no budget or no other deployment)."""
    primary = asyncio.ensure_future(first)
    try:
        done, _ = await asyncio.wait({primary}, timeout=delay)
    except BaseException:
        await _cancel(primary)
        raise
    if done:
        return primary.result()
    started = second()
    if started is None:
        return await primary
    ctx.hedged = True
    backup = asyncio.ensure_future(started)
    pending = {primary, backup}
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            winner = next((task for task in done if not task.cancelled() and task.exception() is None), None)
            if winner is not None:
                for task in pending | (done - {winner}):
                    await _cancel(task)
                return winner.result()
        # both failed: the later failure is as good as any; the attempts are all in the trace
        return primary.result() if not primary.cancelled() else backup.result()
    except BaseException:
        for task in (primary, backup):
            await _cancel(task)
        raise


async def _cancel(task: asyncio.Future[Reply]) -> None:
    if not task.done():
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        return
    if not task.cancelled() and task.exception() is None:
        stream = task.result().stream
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
