"""Adaptive concurrency per deployment: AIMD on time to first token, with a bounded queue.

The limit grows by about one for every ``limit`` calls whose first token came quickly, and shrinks by
10 % when one came slower than ``tolerance`` times the best recent first-token time, or when the
upstream said it was overloaded. Requests over the limit wait in a FIFO queue; a full queue or a
wait longer than ``max_wait_s`` becomes a fast 429 with ``Retry-After`` instead of a pile of
timeouts.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from interlock.errors import RateLimited

__all__ = ["ConcurrencyLimiter", "LimiterPolicy"]


@dataclass(frozen=True, slots=True)
class LimiterPolicy:
    adaptive: bool = True
    initial_limit: int = 32
    min_limit: int = 2
    max_limit: int = 1024
    queue_size: int = 256
    max_wait_s: float = 2.0
    tolerance: float = 2.0
    baseline_window_s: float = 30.0


class ConcurrencyLimiter:
    """One deployment's in-flight limit. Not thread-safe: one event loop."""

    def __init__(self, name: str, policy: LimiterPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.policy = policy
        self.limit = float(min(policy.initial_limit, policy.max_limit))
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._clock = clock
        self._best_ttft = float("inf")
        self._best_at = 0.0
        self._last_decrease = 0.0
        self.rejected = 0

    @property
    def queued(self) -> int:
        return len(self._waiters)

    def has_room(self) -> bool:
        return self.in_flight < int(self.limit)

    async def acquire(self) -> None:
        """Take a slot, waiting in line if needed; raise ``RateLimited`` when overloaded."""
        if self.in_flight < int(self.limit) and not self._waiters:
            self.in_flight += 1
            return
        if len(self._waiters) >= self.policy.queue_size:
            self.rejected += 1
            raise self._overloaded("its queue is full")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, self.policy.max_wait_s)
        except TimeoutError:
            self.rejected += 1
            raise self._overloaded("no slot freed in time") from None
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release_slot()  # the slot was handed over as we were cancelled
            raise
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def release(self, ttft_s: float | None = None, overloaded: bool = False) -> None:
        """Give the slot back, with what the call taught about the deployment's capacity."""
        if self.policy.adaptive:
            self._adapt(ttft_s, overloaded)
        self._release_slot()

    def _release_slot(self) -> None:
        self.in_flight -= 1
        while self._waiters and self.in_flight < int(self.limit):
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)

    def _adapt(self, ttft_s: float | None, overloaded: bool) -> None:
        now = self._clock()
        policy = self.policy
        if ttft_s is not None and (
            ttft_s <= self._best_ttft or now - self._best_at > policy.baseline_window_s
        ):
            self._best_ttft, self._best_at = ttft_s, now
        # relative to the best recent TTFT, with an absolute floor: against an upstream that answers
        # in 0.3 ms, a millisecond of scheduling jitter is not overload
        slow = ttft_s is not None and ttft_s > max(self._best_ttft * policy.tolerance, self._best_ttft + 0.05)
        if overloaded or slow:
            # at most one decrease per baseline latency, so one burst does not collapse the limit
            if now - self._last_decrease >= max(self._best_ttft, 0.05):
                self.limit = max(float(policy.min_limit), self.limit * 0.9)
                self._last_decrease = now
        elif ttft_s is not None and self.in_flight >= int(self.limit) - 1:
            self.limit = min(float(policy.max_limit), self.limit + 1.0 / self.limit)

    def _overloaded(self, why: str) -> RateLimited:
        wait = max(1.0, self.policy.max_wait_s)
        return RateLimited(f"deployment '{self.name}' is overloaded: {why}", retry_after=wait)
