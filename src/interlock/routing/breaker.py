"""Circuit breakers: stop sending traffic to a deployment that is failing, probe it, bring it back.

::

    CLOSED ──(window has ≥ min_calls and failure or slow-call rate ≥ threshold,
    │         or consecutive_failures in a row)──► OPEN
    ▲                                               │ open_s elapsed (doubling on each re-open,
    │                                               ▼ up to max_open_s)
    └──(probe_successes in a row)────────── HALF_OPEN ──(any probe fails)──► OPEN

The window is a ring of time buckets, so the rates describe the last ``window_s`` seconds, not the
whole history. A fast 429 counts as a failure: a rate-limited backend must not look "fast". A call
counts as slow, even when it succeeds, when it ran ``slow_call_ratio`` times slower than the
deployment's recent best for requests of its shape (:mod:`interlock.routing.latency`), or — for a
stream — when its first token took longer than ``slow_call_s``. A complete answer is never judged by
its raw duration: a long answer is not a slow server.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass

from interlock.routing.latency import Judgement
from interlock.routing.window import SlidingCounts

__all__ = ["Breaker", "BreakerPolicy", "BreakerSnapshot", "BreakerState"]

_CALLS, _FAILURES, _SLOW = 0, 1, 2


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When a breaker opens and how it recovers."""

    window_s: float = 10.0
    buckets: int = 10
    min_calls: int = 10
    failure_rate: float = 0.5
    slow_call_s: float | None = None
    slow_call_ratio: float | None = 5.0
    slow_call_rate: float = 0.8
    consecutive_failures: int = 5
    open_s: float = 5.0
    max_open_s: float = 60.0
    half_open_probes: int = 1
    probe_successes: int = 2


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """What ``GET /admin/deployments`` shows of a breaker."""

    state: str
    calls: int
    failure_rate: float
    slow_rate: float
    consecutive_failures: int
    opened_count: int


class Breaker:
    """One deployment's breaker. Not thread-safe: used from one event loop."""

    __slots__ = (
        "_clock",
        "_consecutive",
        "_counts",
        "_current_open_s",
        "_in_probe",
        "_open_until",
        "_probe_ok",
        "opened_count",
        "policy",
        "state",
    )

    def __init__(self, policy: BreakerPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._clock = clock
        self._counts = SlidingCounts(policy.window_s, policy.buckets, 3, clock)  # calls, failures, slow
        self.state = BreakerState.CLOSED
        self._consecutive = 0
        self._open_until = 0.0
        self._current_open_s = policy.open_s
        self._in_probe = 0
        self._probe_ok = 0
        self.opened_count = 0

    def allows(self) -> bool:
        """Whether a call may go to this deployment now (reserves a probe slot when half-open)."""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN:
            if self._clock() < self._open_until:
                return False
            self.state = BreakerState.HALF_OPEN
            self._in_probe = 0
            self._probe_ok = 0
        if self._in_probe < self.policy.half_open_probes:
            self._in_probe += 1
            return True
        return False

    def available(self) -> bool:
        """Like :meth:`allows` but reserves nothing: for filtering candidates."""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN:
            return self._clock() >= self._open_until
        return self._in_probe < self.policy.half_open_probes

    def is_slow(self, judgement: Judgement) -> bool:
        """Whether a successful call counts as slow (see the module docstring)."""
        policy = self.policy
        sample = judgement.sample
        if (
            policy.slow_call_s is not None
            and sample.kind == "first_token"
            and sample.seconds > policy.slow_call_s
        ):
            return True
        return (
            policy.slow_call_ratio is not None
            and judgement.ratio is not None
            and judgement.ratio >= policy.slow_call_ratio
            and judgement.excess_s >= 0.05
        )

    def record(self, ok: bool, slow: bool = False) -> None:
        """The outcome of one call that :meth:`allows` let through."""
        slow = ok and slow
        if self.state is BreakerState.HALF_OPEN:
            self._in_probe = max(0, self._in_probe - 1)
            if not ok or slow:
                self._open()
                return
            self._probe_ok += 1
            if self._probe_ok >= self.policy.probe_successes:
                self._close()
            return
        self._counts.add(_CALLS)
        if not ok:
            self._counts.add(_FAILURES)
            self._consecutive += 1
        else:
            self._consecutive = 0
            if slow:
                self._counts.add(_SLOW)
        if self.state is BreakerState.CLOSED and self._should_open():
            self._open()

    def trip(self) -> None:
        """Open now: the failure was conclusive (nothing listens at the deployment's address)."""
        if self.state is not BreakerState.OPEN:
            self._open()

    def release(self) -> None:
        """A call let through ended without an outcome that says anything (e.g. the client left)."""
        if self.state is BreakerState.HALF_OPEN:
            self._in_probe = max(0, self._in_probe - 1)

    def snapshot(self) -> BreakerSnapshot:
        calls, failures, slow = self._totals()
        return BreakerSnapshot(
            state=self.state.value,
            calls=calls,
            failure_rate=failures / calls if calls else 0.0,
            slow_rate=slow / calls if calls else 0.0,
            consecutive_failures=self._consecutive,
            opened_count=self.opened_count,
        )

    def _should_open(self) -> bool:
        policy = self.policy
        if self._consecutive >= policy.consecutive_failures > 0:
            return True
        calls, failures, slow = self._totals()
        if calls < policy.min_calls:
            return False
        return failures / calls >= policy.failure_rate or (
            policy.slow_call_s is not None and slow / calls >= policy.slow_call_rate
        )

    def _open(self) -> None:
        now = self._clock()
        if self.state is BreakerState.HALF_OPEN:
            self._current_open_s = min(self._current_open_s * 2, self.policy.max_open_s)
        else:
            self._current_open_s = self.policy.open_s
        self.state = BreakerState.OPEN
        self._open_until = now + self._current_open_s
        self.opened_count += 1
        self._in_probe = 0

    def _close(self) -> None:
        self.state = BreakerState.CLOSED
        self._consecutive = 0
        self._current_open_s = self.policy.open_s
        self._counts.clear()

    def _totals(self) -> tuple[int, int, int]:
        calls, failures, slow = self._counts.totals()
        return calls, failures, slow
