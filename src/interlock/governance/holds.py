"""Settling what requests took: rate-limit tickets and budget reservations, off the request path.

A governance stage appends a hold to ``ctx.holds``; when the request is recorded (its status, usage
and cost known), each hold's ``finish`` starts the settlement as a background task — the answer has
already left. :class:`Settler` keeps those tasks, so that none is lost while it runs, logs a
failure once instead of raising it into nothing, and lets shutdown wait for the last ones.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from interlock.core.context import RequestContext
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

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def drain(self, timeout_s: float = 5.0) -> None:
        """Wait (a bounded time) for the settlements still running."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout_s)


def used_tokens(ctx: RequestContext) -> int:
    usage = ctx.usage
    return 0 if usage is None else usage.prompt_tokens + usage.completion_tokens


class LimitHold:
    """A rate-limit ticket: its token and cost buckets corrected, its slots freed."""

    __slots__ = ("_limiter", "_settler", "_ticket")

    def __init__(self, limiter: RateLimiter, ticket: Ticket, settler: Settler) -> None:
        self._limiter = limiter
        self._ticket = ticket
        self._settler = settler

    def finish(self, ctx: RequestContext, cost_usd: float) -> None:
        work = self._limiter.settle(self._ticket, tokens=used_tokens(ctx), cost=usd_to_micros(cost_usd))
        self._settler.run(work)


class BudgetHold:
    """A budget reservation: replaced by the request's real cost (nothing, when it failed)."""

    __slots__ = ("_engine", "_reservation", "_settler", "_sink")

    def __init__(
        self, engine: BudgetEngine, reservation: Reservation, settler: Settler, sink: ThresholdSink
    ) -> None:
        self._engine = engine
        self._reservation = reservation
        self._settler = settler
        self._sink = sink

    def finish(self, ctx: RequestContext, cost_usd: float) -> None:
        if cost_usd <= 0:
            self._settler.run(self._engine.release(self._reservation))
            return
        self._settler.run(self._settle(usd_to_micros(cost_usd)))

    async def _settle(self, actual: int) -> None:
        for event in await self._engine.settle(self._reservation, actual):
            self._sink(event)
