"""The simulated engine: its state, its concurrency slots and FIFO queue, and its clock.

One :class:`Engine` is shared by every request of one simulator. It owns the live state (counters,
faults, prefix cache) and decides how long each phase of a request takes:

- **queue**: at most ``max_concurrency`` requests hold a slot; the rest wait first in, first out;
- **prefill**: ``ttft_ms`` plus ``prefill_ms_per_token`` for every prompt token the prefix cache lacks;
- **decode**: ``tpot_ms`` per token, slowed by ``batch_penalty`` for every other sequence decoding.

Delays of zero never touch a timer, so a simulator with every delay at 0 answers at once.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence

from interlock.sim.config import SimConfig
from interlock.sim.faults import FaultState
from interlock.sim.prefix_cache import PrefixCache
from interlock.sim.responses import ApiError
from interlock.sim.stats import SimStats

__all__ = ["Engine", "pause"]


async def pause(seconds: float) -> None:
    """Sleep, but not at all for a delay of zero (no timer, no trip through the loop)."""
    if seconds > 0:
        await asyncio.sleep(seconds)


class Engine:
    """Live state and timing of one simulator; used from its event loop only."""

    __slots__ = (
        "_active",
        "_closing",
        "_waiters",
        "cache",
        "closed",
        "config",
        "faults",
        "stats",
    )

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.stats = SimStats()
        self.faults = FaultState(config.seed)
        self.cache = PrefixCache(config.prefix_block_size, config.prefix_cache_blocks)
        self._active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closing: set[asyncio.Future[None]] = set()
        #: Set once the server shuts down; requests arriving after it are refused.
        self.closed = False

    # -- slots -------------------------------------------------------------------------------------

    def try_acquire(self) -> bool:
        """Take a free slot at once if there is one and nobody is waiting for it."""
        if self._active < self.config.max_concurrency and not self._waiters:
            self._active += 1
            return True
        return False

    async def acquire(self) -> None:
        """Take a slot, waiting in FIFO order; a full queue answers ``queue_full_status``."""
        if self.try_acquire():
            return
        config = self.config
        if config.max_queue is not None and len(self._waiters) >= config.max_queue:
            self.stats.rejected += 1
            raise ApiError(
                config.queue_full_status,
                f"The server is overloaded: {len(self._waiters)} requests are already waiting. "
                "Please retry after a short wait.",
                code="rate_limit_exceeded" if config.queue_full_status == 429 else "service_unavailable",
                retry_after_s=config.queue_full_retry_after_s,
            )
        ticket: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(ticket)
        self.stats.enqueue()
        try:
            await ticket
        except asyncio.CancelledError:
            if ticket.done() and not ticket.cancelled():
                # The slot was handed over just as the waiter gave up: pass it on, don't leak it.
                self.release()
            else:
                self._waiters.remove(ticket)
            raise
        finally:
            self.stats.queued -= 1

    def release(self) -> None:
        """Give a slot back, straight to the longest waiter if there is one."""
        while self._waiters:
            ticket = self._waiters.popleft()
            if not ticket.done():
                ticket.set_result(None)
                return
        self._active -= 1

    # -- clock -------------------------------------------------------------------------------------

    def prefill_seconds(self, uncached_tokens: int) -> float:
        """Time to first token for a prompt with ``uncached_tokens`` not in the prefix cache."""
        config = self.config
        return (config.ttft_ms + config.prefill_ms_per_token * uncached_tokens) / 1000

    def step_seconds(self) -> float:
        """Time of one decode step with the batch as it is now."""
        config = self.config
        if config.tpot_ms == 0:
            return 0.0
        others = max(self.stats.batch_size - 1, 0)
        return config.tpot_ms * (1 + config.batch_penalty * others) / 1000

    def admit_prompt(self, tokens: Sequence[str]) -> int:
        """Run ``tokens`` through the prefix cache; returns the cached count and records hits and misses."""
        cached = self.cache.admit(tokens)
        stats = self.stats
        stats.prefix_cache_hit_tokens += cached
        stats.prefix_cache_miss_tokens += len(tokens) - cached
        return cached

    # -- shutdown ----------------------------------------------------------------------------------

    def closing_signal(self) -> asyncio.Future[None]:
        """A future that resolves when the simulator shuts down; waiters must discard it when done."""
        signal: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._closing.add(signal)
        return signal

    def discard_signal(self, signal: asyncio.Future[None]) -> None:
        """Forget a future from :meth:`closing_signal`."""
        self._closing.discard(signal)

    def close(self) -> None:
        """Tell every request still waiting (hung, queued, mid-stream) to give up now."""
        self.closed = True
        for signal in list(self._closing):
            if not signal.done():
                signal.set_result(None)
        self._closing.clear()
