"""A sliding time window of counters: a ring of buckets, old buckets cleared as time moves on."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["SlidingCounts"]


class SlidingCounts:
    """``fields`` counters summed over the last ``window_s`` seconds, in ``buckets`` steps."""

    __slots__ = ("_buckets", "_clock", "_head", "_head_index", "_totals", "_width")

    def __init__(
        self, window_s: float, buckets: int, fields: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self._width = window_s / buckets
        self._buckets = [[0] * fields for _ in range(buckets)]
        self._totals = [0] * fields
        self._head = 0
        self._head_index = int(clock() / self._width)

    def add(self, field: int, amount: int = 1) -> None:
        self._current()[field] += amount
        self._totals[field] += amount

    def totals(self) -> list[int]:
        """The sums over the window (kept as running totals: O(1) per call)."""
        self._current()
        return list(self._totals)

    def clear(self) -> None:
        for bucket in self._buckets:
            bucket[:] = [0] * len(bucket)
        self._totals = [0] * len(self._totals)

    def _current(self) -> list[int]:
        index = int(self._clock() / self._width)
        steps = index - self._head_index
        if steps > 0:
            count = len(self._buckets)
            for step in range(1, min(steps, count) + 1):
                bucket = self._buckets[(self._head + step) % count]
                for i, value in enumerate(bucket):
                    self._totals[i] -= value
                bucket[:] = [0] * len(bucket)
            self._head = (self._head + steps) % count
            self._head_index = index
        return self._buckets[self._head]
