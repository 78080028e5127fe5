"""Whether limits and budgets are being counted as one gateway, or per process for now.

``SharedStateHealth`` is the flag a ``/ready`` probe reads and the source of the metrics
``collector`` exports; ``fallback`` flips it when Redis goes away and when it comes back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Literal

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["Backend", "SharedStateHealth", "SharedStateMetrics"]

Backend = Literal["redis", "sqlite", "memory"]


class SharedStateHealth:
    """The state of the counter backend, as one process sees it."""

    def __init__(self, backend: Backend, clock: Callable[[], float]) -> None:
        self.backend: Backend = backend
        self._clock = clock
        self.degraded_since: float | None = None
        """When Redis stopped answering (epoch seconds); None while counting is shared."""
        self.outages = 0
        self.fallback_calls = 0

    @property
    def degraded(self) -> bool:
        return self.degraded_since is not None

    @property
    def ready(self) -> bool:
        """False while limits are counted per process because Redis is unreachable."""
        return self.degraded_since is None

    def mark_degraded(self) -> bool:
        """Record an outage; True when this call began it (the caller logs it, once)."""
        if self.degraded_since is not None:
            return False
        self.degraded_since = self._clock()
        self.outages += 1
        return True

    def mark_shared(self) -> None:
        self.degraded_since = None

    def check(self) -> tuple[bool, str]:
        """For a readiness probe: (ready, a short word on why)."""
        if self.degraded_since is None:
            return True, "ok"
        return False, "degraded: Redis unreachable, limits counted per process"


class SharedStateMetrics(Collector):
    """``interlock_shared_state_*``: read from the health object at scrape time."""

    def __init__(self, health: SharedStateHealth) -> None:
        self._health = health

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        health = self._health
        degraded = GaugeMetricFamily(
            "interlock_shared_state_degraded",
            "1 while limits and budgets are counted per process because Redis is unreachable.",
            labels=["backend"],
        )
        degraded.add_metric([health.backend], 1.0 if health.degraded else 0.0)
        outages = CounterMetricFamily(
            "interlock_shared_state_outages", "Times the shared counter backend became unreachable."
        )
        outages.add_metric([], float(health.outages))
        calls = CounterMetricFamily(
            "interlock_shared_state_fallback_calls",
            "Limit and budget operations answered by the per-process fallback.",
        )
        calls.add_metric([], float(health.fallback_calls))
        yield from (degraded, outages, calls)
