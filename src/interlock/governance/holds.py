"""Settling what requests took: rate-limit tickets and budget reservations, off the request path.

A governance stage appends a hold to ``ctx.holds``; when the request is recorded (its status, usage
and cost known), one background task settles them all (:meth:`Settler.settle`) — the answer has
already left. :class:`Settler` keeps those tasks, so that none is lost while it runs, logs a
failure once instead of raising it into nothing, and lets shutdown wait for the last ones.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from interlock.core.context import Hold, RequestContext
from interlock.governance.budgets import BudgetEngine, Reservation, ThresholdCrossed
from interlock.governance.money import usd_to_micros
from interlock.governance.ratelimits import RateLimiter, Ticket

__all__ = ["BudgetHold", "LimitHold", "Settler"]

log = logging.getLogger(__name__)

ThresholdSink = Callable[[ThresholdCrossed], None]


class Settler:
    """Runs settlements in the background and remembers them until they are done."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self.failures = 0

    def run(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self.failures += 1
            log.warning("settling a request's budget or limits failed: %s", type(error).__name__)

    def settle(self, ctx: RequestContext, cost_usd: float) -> None:
        """Settle every hold of ``ctx`` in one background task (never blocks or raises)."""
        self.run(_settle_all(tuple(ctx.holds), ctx, cost_usd))

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def drain(self, timeout_s: float = 5.0) -> None:
        """Wait (a bounded time) for the settlements still running."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout_s)


async def _settle_all(holds: tuple[Hold, ...], ctx: RequestContext, cost_usd: float) -> None:
    failed: BaseException | None = None
    for hold in holds:
        try:
            await hold.settle(ctx, cost_usd)
        except Exception as exc:  # the others still settle; the first failure is reported
            failed = failed or exc
    if failed is not None:
        raise failed


def used_tokens(ctx: RequestContext) -> int:
    usage = ctx.usage
    return 0 if usage is None else usage.prompt_tokens + usage.completion_tokens


class LimitHold:
    """A rate-limit ticket: its token and cost buckets corrected, its slots freed."""

    __slots__ = ("_limiter", "_ticket")

    def __init__(self, limiter: RateLimiter, ticket: Ticket) -> None:
        self._limiter = limiter
        self._ticket = ticket

    async def settle(self, ctx: RequestContext, cost_usd: float) -> None:
        await self._limiter.settle(self._ticket, tokens=used_tokens(ctx), cost=usd_to_micros(cost_usd))


class BudgetHold:
    """A budget reservation: replaced by the request's real cost (nothing, when it failed)."""

    __slots__ = ("_engine", "_reservation", "_sink")

    def __init__(self, engine: BudgetEngine, reservation: Reservation, sink: ThresholdSink) -> None:
        self._engine = engine
        self._reservation = reservation
        self._sink = sink

    async def settle(self, ctx: RequestContext, cost_usd: float) -> None:
        if cost_usd <= 0:
            await self._engine.release(self._reservation)
            return
        for event in await self._engine.settle(self._reservation, usd_to_micros(cost_usd)):
            self._sink(event)
