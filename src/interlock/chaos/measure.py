"""The numbers of a drill, from what the clients saw and what the admin API showed.

* **error rate**: requests that failed as the client saw them (non-200, a stream that ended in an
  error event or without ``[DONE]``, no answer at all), over all requests of the phase;
* **fallback rate**: successful requests that needed more than one attempt, over successes;
* **p50 / p99**: latency of successful requests, from when each was due (open loop);
* **time to detect**: fault injection → the faulty deployment's breaker seen open; without the admin
  API, → the last client-visible error or fallback before they pause for ``quiet_s``;
* **failover**: fault injection → the p99 of a sliding window of requests (by completion time) back
  within ``p99_factor`` × the baseline p99 with no client-visible error, for good (until the fault
  is removed);
* **time to recover**: fault removal → the same, and the breaker closed again for good.

Requests are assigned to phases by when they were due.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from interlock.chaos.traffic import RequestRecord

__all__ = [
    "PhaseStats",
    "client_detect_after",
    "percentile",
    "phase_stats",
    "serving_again_after",
    "settle_after",
]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0 to 100), linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True, slots=True)
class PhaseStats:
    """What the clients saw during one phase (or the whole drill)."""

    name: str
    start_s: float
    end_s: float
    requests: int
    errors: int
    fallbacks: int
    p50_ms: float | None
    p99_ms: float | None
    errors_by_kind: tuple[tuple[str, int], ...] = ()
    answered_by: tuple[tuple[str, int], ...] = ()
    """Successful requests per deployment that answered (``x-interlock-deployment``)."""

    @property
    def ok(self) -> int:
        return self.requests - self.errors

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def fallback_rate(self) -> float:
        return self.fallbacks / self.ok if self.ok else 0.0


def phase_stats(name: str, records: Iterable[RequestRecord], start_s: float, end_s: float) -> PhaseStats:
    """Stats of the requests due in ``[start_s, end_s)``."""
    mine = [r for r in records if start_s <= r.start_s < end_s]
    latencies = [r.latency_s * 1000.0 for r in mine if r.ok]
    kinds = Counter(r.error for r in mine if r.error is not None)
    return PhaseStats(
        name=name,
        start_s=start_s,
        end_s=end_s,
        requests=len(mine),
        errors=sum(kinds.values()),
        fallbacks=sum(1 for r in mine if r.fallback),
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        errors_by_kind=tuple(sorted(kinds.items())),
        answered_by=tuple(sorted(Counter(r.deployment or "?" for r in mine if r.ok).items())),
    )


def settle_after(
    records: Sequence[RequestRecord],
    since: float,
    until: float,
    limit_ms: float,
    window_s: float,
    step_s: float,
) -> float | None:
    """Seconds after ``since`` from which every sliding window ending in ``[since, until]`` is good:
    no client-visible error among the requests completing in it, and their p99 within ``limit_ms``.

    0 when no window was ever bad; None when the last window is still bad.
    """
    if until <= since:
        return None
    ordered = sorted(records, key=lambda r: r.end_s)
    ends = [r.end_s for r in ordered]
    settled: float | None = 0.0
    steps = math.ceil((until - since) / step_s)
    low = 0
    high = 0
    for k in range(steps + 1):
        t = min(since + k * step_s, until)
        while high < len(ordered) and ends[high] <= t:
            high += 1
        while low < high and ends[low] <= t - window_s:
            low += 1
        window = ordered[low:high]
        bad = any(not r.ok for r in window)
        if not bad:
            p99 = percentile([r.latency_s * 1000.0 for r in window], 99)
            bad = p99 is not None and p99 > limit_ms
        if bad:
            settled = None
        elif settled is None:
            settled = t - since
    return settled


def client_detect_after(
    records: Iterable[RequestRecord], since: float, until: float, quiet_s: float
) -> float | None:
    """Without the admin API: seconds from ``since`` to the last request (by due time) that showed
    the fault to its client (an error or a fallback) before such requests pause for ``quiet_s``,
    the pause starting before ``until``. None when no client saw anything, or when they kept seeing
    it until ``until`` (the fault was removed, or the drill ended, before any pause)."""
    impacted = sorted(r.start_s for r in records if since <= r.start_s < until and (not r.ok or r.fallback))
    if not impacted:
        return None
    for current, following in zip(impacted, [*impacted[1:], math.inf], strict=True):
        if following - current >= quiet_s and current + quiet_s <= until:
            return current - since
    return None


def serving_again_after(
    records: Iterable[RequestRecord], deployments: Iterable[str], since: float
) -> float | None:
    """Seconds from ``since`` until the first request due after it was answered by one of
    ``deployments`` (the repaired deployment is taking traffic again); None if none was."""
    wanted = set(deployments)
    ends = [r.end_s for r in records if r.ok and r.start_s >= since and r.deployment in wanted]
    return min(ends) - since if ends else None
