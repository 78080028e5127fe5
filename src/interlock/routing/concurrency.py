"""Adaptive concurrency per deployment: how many calls it may have in flight, learned from its answers.

The limit follows the deployment's own signals, judged like with like (:mod:`interlock.routing.latency`):
a stream by its time to first token, a complete answer by its time per output token, an embeddings
call by its time — each against the deployment's recent best for requests of the same shape. So a
long answer never reads as overload; queueing in the upstream (its first tokens coming later, its
answers slower per token than their size explains) and its own 429 / 503 answers do.

- **Growth**: while no call has been slow, the limit grows by one for each call that finished with
  the limit in use (doubling per round trip, like TCP's slow start); after a decrease it grows as
  fast again once calls run within 25 % of their baseline, and by about one per ``limit`` calls
  while they are slower than that but not slow.
- **Decrease**: a slow call or an overload answer cuts the limit to 90 % of what was in flight (so a
  limit far above the traffic falls at once to where the trouble began), at most once per latency of
  the call that reported it: the calls already in flight were admitted under the old limit.
- **Queue**: requests over the limit wait in a fair line (:mod:`interlock.routing.fair_queue`: a
  freed slot goes to the waiting key with the fewest calls in flight; interactive before batch), at
  most ``limit × queue_ratio`` of them and at most ``max_wait_s``; beyond that the answer is a fast
  429 with ``Retry-After`` — at saturation a quick "no" beats a slow "yes" for every request behind
  it — and it goes to the key holding most of the deployment. A key that holds less than another
  may wait beyond that length (up to ``queue_size``): it is not the one causing the crowd.
  While it refuses requests anyway, the limiter holds those it admits to ``shed_tolerance`` of their
  baseline.
- **Batch work** starts only while fewer than ``batch_share`` × the limit calls are in flight (it
  uses spare capacity, and the rest of the limit stays free for interactive bursts), and waits
  behind every interactive request in line.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from interlock.core.context import Priority
from interlock.core.errors import RateLimited
from interlock.routing.fair_queue import FairQueue
from interlock.routing.latency import Judgement

__all__ = ["ConcurrencyLimiter", "LimiterPolicy"]

_CALM_S = 5.0
"""After a cut or a refusal, growth stays additive this long."""
_ALL: tuple[Priority, ...] = ("interactive", "batch")
_INTERACTIVE: tuple[Priority, ...] = ("interactive",)


@dataclass(frozen=True, slots=True)
class LimiterPolicy:
    adaptive: bool = True
    initial_limit: int = 64
    min_limit: int = 2
    max_limit: int = 1024
    queue_size: int = 256
    queue_ratio: float = 0.1
    max_wait_s: float = 1.0
    tolerance: float = 2.0
    """A stream's first token (or an embeddings call) this many times slower than its baseline is slow."""
    answer_tolerance: float = 2.5
    """The same for a complete answer's time per token: decode slows as an engine batches more
    sequences, which is throughput, not overload."""
    shed_tolerance: float = 1.8
    """While it is refusing requests anyway (its queue full or waits timing out in the last
    second), the limiter keeps those it admits within this multiple of their baseline: at
    saturation a quick "no" for some beats a slow "yes" for all."""
    batch_share: float = 0.75
    """Batch work starts only while fewer than this share of the limit are in flight."""
    min_excess_s: float = 0.05
    """And slower by at least this much: against an upstream that answers in a millisecond,
    scheduling jitter is not overload."""


class ConcurrencyLimiter:
    """One deployment's in-flight limit. Not thread-safe: one event loop."""

    def __init__(self, name: str, policy: LimiterPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.policy = policy
        self.limit = float(min(policy.initial_limit, policy.max_limit))
        self.in_flight = 0
        self._waiters = FairQueue()
        self._holding: dict[str, int] = {}
        """Calls in flight per tenant (only tenants with some)."""
        self._clock = clock
        self._slow_start = True
        self._quiet_until = 0.0
        self._shedding_until = 0.0
        self._last_cut = float("-inf")
        self.rejected = 0
        self.decreases = 0

    @property
    def queued(self) -> int:
        return len(self._waiters)

    def has_room(self) -> bool:
        return self.in_flight < int(self.limit)

    def queue_room(self) -> int:
        """How many more requests may wait in line now."""
        cap = min(self.policy.queue_size, max(1, int(self.limit * self.policy.queue_ratio)))
        return max(0, cap - len(self._waiters))

    async def acquire(self, tenant: str = "", priority: Priority = "interactive") -> None:
        """Take a slot for ``tenant`` (the caller's key), waiting in line if needed; raise
        ``RateLimited`` when overloaded."""
        waiters = self._waiters
        ahead = waiters.waiting("interactive") if priority == "interactive" else len(waiters)
        if not ahead and self.in_flight < self._cap(priority):
            self.in_flight += 1
            self._holding[tenant] = self._holding.get(tenant, 0) + 1
            return
        if self.queue_room() <= 0:
            victim = waiters.make_room_for(priority, tenant, self._holding)
            if victim is not None:
                self._refused()
                victim.set_exception(self._overloaded("its queue is full"))
            elif not self._not_the_crowd(tenant) or len(waiters) >= self.policy.queue_size:
                self._refused()
                raise self._overloaded("its queue is full")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters.push(priority, tenant, waiter)
        try:
            await asyncio.wait_for(waiter, self.policy.max_wait_s)
        except TimeoutError:
            self._refused()
            raise self._overloaded("no slot freed in time") from None
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._release_slot(tenant)  # the slot was handed over as we were cancelled
            raise
        finally:
            waiters.remove(priority, tenant, waiter)

    def _not_the_crowd(self, tenant: str) -> bool:
        """Whether another tenant has more calls in flight on the deployment than ``tenant``: then
        ``tenant`` may wait beyond the line's usual length (up to ``queue_size``), since it is not the
        one causing the crowd; freed slots go to it first."""
        own = self._holding.get(tenant, 0)
        return any(count > own for name, count in self._holding.items() if name != tenant)

    def _cap(self, priority: Priority) -> int:
        limit = int(self.limit)
        return limit if priority == "interactive" else max(1, int(limit * self.policy.batch_share))

    def release(self, judgement: Judgement | None = None, overloaded: bool = False, tenant: str = "") -> None:
        """Give ``tenant``'s slot back, with what the call taught about the deployment's capacity: its
        latency judged against its shape (None when it says nothing), or an overload answer."""
        if self.policy.adaptive and (judgement is not None or overloaded):
            self._adapt(judgement, overloaded)
        self._release_slot(tenant)

    def is_slow(self, judgement: Judgement) -> bool:
        """Whether a call's latency says the deployment is over its capacity."""
        if judgement.ratio is None or judgement.excess_s < self.policy.min_excess_s:
            return False
        policy = self.policy
        tolerance = policy.answer_tolerance if judgement.sample.kind == "answer" else policy.tolerance
        if self._clock() < self._shedding_until:
            tolerance = min(tolerance, policy.shed_tolerance)
        return judgement.ratio > tolerance

    def _refused(self) -> None:
        self.rejected += 1
        self._shedding_until = self._clock() + 1.0

    def _release_slot(self, tenant: str) -> None:
        self.in_flight -= 1
        holding = self._holding
        left = holding.get(tenant, 0) - 1
        if left > 0:
            holding[tenant] = left
        else:
            holding.pop(tenant, None)
        while self.in_flight < int(self.limit):
            classes = _ALL if self.in_flight < self._cap("batch") else _INTERACTIVE
            found = self._waiters.pop(classes, holding)
            if found is None:
                return
            waiter, owner = found
            if not waiter.done():
                self.in_flight += 1
                holding[owner] = holding.get(owner, 0) + 1
                waiter.set_result(None)

    def _adapt(self, judgement: Judgement | None, overloaded: bool) -> None:
        policy = self.policy
        if overloaded or (judgement is not None and self.is_slow(judgement)):
            now = self._clock()
            self._slow_start = False
            if now >= self._quiet_until:
                # cut to where the trouble began, but not below half the limit on one report: the
                # slow call may have finished while few others were in flight
                in_use = max(float(self.in_flight), self.limit / 2)
                self.limit = max(float(policy.min_limit), min(self.limit, in_use) * 0.9)
                self.decreases += 1
                self._last_cut = now
                seconds = judgement.sample.seconds if judgement is not None else 0.0
                self._quiet_until = now + min(max(seconds, 0.25), 2.0)
            return
        # back at its best, and calm for a while (no cut, no refusal): grow as fast as at the start;
        # otherwise by AIMD's rule — one kind of request at its best (streams' first tokens) must
        # not outgrow the cuts another kind (complete answers) asks for
        now = self._clock()
        calm = now >= self._shedding_until and now - self._last_cut >= _CALM_S
        healthy = judgement is not None and judgement.ratio is not None and judgement.ratio < 1.25
        fast = self._slow_start or (healthy and calm)
        in_use = self.in_flight >= (self.limit / 2 if fast else int(self.limit) - 1) or bool(self._waiters)
        if in_use:
            step = 1.0 if fast else 1.0 / self.limit
            self.limit = min(float(policy.max_limit), self.limit + step)

    def _overloaded(self, why: str) -> RateLimited:
        wait = max(1.0, self.policy.max_wait_s)
        return RateLimited(f"deployment '{self.name}' is overloaded: {why}", retry_after=wait)
