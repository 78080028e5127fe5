"""Counters and gauges the simulator shows at ``GET /sim/stats``.

Tests of the gateway read these to see what reached the backend: how many requests, how many were
cancelled by a client going away, how deep the queue got. Counters only go up until ``reset``; gauges
(``in_flight``, ``queued``, ``batch_size``) follow the live state and ``peak_*`` remember their highest
value since the last reset.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["SimStats"]


@dataclass(slots=True)
class SimStats:
    """Mutable counters, owned by the one event loop that serves the simulator."""

    requests_total: int = 0
    completed: int = 0
    cancelled: int = 0
    invalid: int = 0
    rejected: int = 0
    errors_injected: int = 0
    resets_injected: int = 0
    garbage_injected: int = 0
    responses_cut: int = 0
    hangs: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prefix_cache_hit_tokens: int = 0
    prefix_cache_miss_tokens: int = 0
    # Gauges.
    in_flight: int = 0
    queued: int = 0
    batch_size: int = 0
    peak_in_flight: int = 0
    peak_queued: int = 0
    peak_batch_size: int = 0

    def enter(self) -> None:
        """A request arrived."""
        self.requests_total += 1
        self.in_flight += 1
        if self.in_flight > self.peak_in_flight:
            self.peak_in_flight = self.in_flight

    def enqueue(self) -> None:
        """A request started waiting for a slot."""
        self.queued += 1
        if self.queued > self.peak_queued:
            self.peak_queued = self.queued

    def decode(self, sequences: int) -> None:
        """``sequences`` joined (positive) or left (negative) the decoding batch."""
        self.batch_size += sequences
        if self.batch_size > self.peak_batch_size:
            self.peak_batch_size = self.batch_size

    def reset(self) -> None:
        """Zero the counters; gauges keep their live values and peaks restart from them."""
        live = (self.in_flight, self.queued, self.batch_size)
        fresh = SimStats()
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(fresh, name))
        self.in_flight, self.queued, self.batch_size = live
        self.peak_in_flight, self.peak_queued, self.peak_batch_size = live

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return asdict(self)
