"""Circuit breaker transitions on a virtual clock."""

from __future__ import annotations

from interlock.routing.breaker import Breaker, BreakerPolicy, BreakerState
from interlock.routing.latency import Judgement, LatencyKind, LatencySample


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(**overrides: float) -> tuple[Breaker, Clock]:
    clock = Clock()
    policy = BreakerPolicy(**overrides)  # type: ignore[arg-type]
    return Breaker(policy, clock), clock


def test_consecutive_failures_open_it() -> None:
    breaker, _ = make(consecutive_failures=3)
    for _ in range(2):
        assert breaker.allows()
        breaker.record(ok=False)
    assert breaker.state is BreakerState.CLOSED
    breaker.record(ok=False)
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allows() and not breaker.available()


def test_failure_rate_needs_the_minimum_number_of_calls() -> None:
    breaker, _ = make(consecutive_failures=0, min_calls=10, failure_rate=0.5)
    for i in range(9):
        breaker.record(ok=i % 2 == 0)  # 4 failures of 9: below min_calls anyway
    assert breaker.state is BreakerState.CLOSED
    breaker.record(ok=False)  # 5 of 10
    assert breaker.state is BreakerState.OPEN


def test_old_calls_leave_the_window() -> None:
    breaker, clock = make(consecutive_failures=0, min_calls=4, failure_rate=0.5, window_s=10, buckets=10)
    for _ in range(3):
        breaker.record(ok=False)
    clock.now += 11  # the failures age out
    for _ in range(3):
        breaker.record(ok=True)
    breaker.record(ok=False)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.snapshot().calls == 4


def test_slow_calls_open_it() -> None:
    breaker, _ = make(consecutive_failures=0, min_calls=4, slow_call_s=1.0, slow_call_rate=0.75)
    for _ in range(3):
        breaker.record(ok=True, slow=True)
    breaker.record(ok=True, slow=False)
    assert breaker.state is BreakerState.OPEN
    assert breaker.snapshot().slow_rate == 0.75


def judgement(kind: LatencyKind, seconds: float, ratio: float | None, excess_s: float = 1.0) -> Judgement:
    return Judgement(LatencySample(kind, seconds, 100), ratio, excess_s)


def test_slowness_is_judged_against_the_shape_of_the_request() -> None:
    breaker, _ = make(slow_call_s=1.0, slow_call_ratio=5.0)
    # a stream's first token past slow_call_s is slow; a long complete answer is not, by its duration
    assert breaker.is_slow(judgement("first_token", 2.0, 1.0))
    assert not breaker.is_slow(judgement("answer", 30.0, 1.1))
    # any kind running five times slower than its recent best for its size is
    assert breaker.is_slow(judgement("answer", 30.0, 6.0))
    assert not breaker.is_slow(judgement("answer", 30.0, None))  # no baseline yet
    assert not breaker.is_slow(judgement("embedding", 0.004, 8.0, excess_s=0.003))  # 3 ms is jitter


def test_half_open_probe_success_closes_it() -> None:
    breaker, clock = make(consecutive_failures=1, open_s=5, half_open_probes=1, probe_successes=2)
    breaker.record(ok=False)
    clock.now += 5
    assert breaker.available()
    assert breaker.allows()  # first probe
    assert breaker.state is BreakerState.HALF_OPEN
    assert not breaker.allows()  # only one probe at a time
    breaker.record(ok=True)
    assert breaker.allows()
    breaker.record(ok=True)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.snapshot().calls == 0


def test_failed_probe_reopens_for_longer() -> None:
    breaker, clock = make(consecutive_failures=1, open_s=5, max_open_s=12)
    breaker.record(ok=False)
    clock.now += 5
    assert breaker.allows()
    breaker.record(ok=False)
    assert breaker.state is BreakerState.OPEN
    clock.now += 9
    assert not breaker.available()  # 10 s now
    clock.now += 1
    assert breaker.allows()
    breaker.record(ok=False)
    clock.now += 11.9
    assert not breaker.available()  # capped at 12 s
    clock.now += 0.2
    assert breaker.available()
    assert breaker.opened_count == 3


def test_released_probe_frees_its_slot() -> None:
    breaker, clock = make(consecutive_failures=1, open_s=1)
    breaker.record(ok=False)
    clock.now += 1
    assert breaker.allows()
    breaker.release()
    assert breaker.allows()
