"""Hedged requests: when the first attempt is slow to start, race a second and keep the winner.

The first attempt runs alone for ``delay`` (the deployment's recent p95 time to first token). If it
has produced nothing by then, a second attempt starts on another deployment; whichever produces its
first token (or complete answer) first wins, and the other is cancelled — its upstream connection
closed, so the loser stops generating. If one fails, the other is awaited; if both fail, the first
attempt's error is raised.

The attempts run in tasks of their own, and none outlives the call: when the caller is cancelled,
both attempts are cancelled and waited for, a reply either had already produced has its stream
closed, and the cancellation propagates. The losers' own failures and cancellations are theirs and
never reach the caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

from interlock.core.context import Reply, RequestContext

__all__ = ["hedged"]

_Attempt = asyncio.Future[Reply]


async def hedged(
    ctx: RequestContext,
    delay: float,
    first: Coroutine[Any, Any, Reply],
    second: Callable[[], Awaitable[Reply] | None],
) -> Reply:
    """Run ``first``; after ``delay`` without a result, race ``second()`` against it (unless it
    returns None: no budget or no other deployment)."""
    attempts: list[_Attempt] = [asyncio.ensure_future(first)]
    try:
        done, _ = await asyncio.wait(attempts, timeout=delay)
        if not done and (started := second()) is not None:
            ctx.hedged = True
            attempts.append(asyncio.ensure_future(started))
        winner = await _first_success(attempts)
        await _discard(attempt for attempt in attempts if attempt is not winner)
    except BaseException:
        # the caller is being cancelled (or something broke): no attempt may outlive this call
        await _discard(attempts)
        raise
    return winner.result()


async def _first_success(attempts: list[_Attempt]) -> _Attempt:
    """The first attempt to succeed; when all fail, the first that failed rather than being
    cancelled (its result raises its error)."""
    pending = set(attempts)
    while pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for attempt in attempts:  # in order: on a tie the first attempt wins
            if attempt in done and not attempt.cancelled() and attempt.exception() is None:
                return attempt
    return next((attempt for attempt in attempts if not attempt.cancelled()), attempts[0])


async def _discard(attempts: Iterable[_Attempt]) -> None:
    """Cancel ``attempts`` and wait until each has ended (closing its upstream connection), then
    close the stream of any reply one had already produced. Only the caller's own cancellation
    propagates from here."""
    attempts = list(attempts)
    for attempt in attempts:
        attempt.cancel()
    try:
        if running := [attempt for attempt in attempts if not attempt.done()]:
            await asyncio.wait(running)
    finally:
        for attempt in attempts:
            if attempt.done() and not attempt.cancelled():
                await _close(attempt)


async def _close(attempt: _Attempt) -> None:
    if attempt.exception() is not None:  # retrieved, so it is not reported as lost
        return
    aclose = getattr(attempt.result().stream, "aclose", None)
    if aclose is not None:
        await aclose()
