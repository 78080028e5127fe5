"""The drill's numbers, computed from made-up observations (no traffic, no clocks)."""

from __future__ import annotations

import pytest
from rich.console import Console

from interlock.chaos.actions import ActionRecord
from interlock.chaos.loading import parse_scenario
from interlock.chaos.measure import (
    client_detect_after,
    percentile,
    phase_stats,
    serving_again_after,
    settle_after,
)
from interlock.chaos.monitor import DeploymentSample, first_open_after, settled_closed_after
from interlock.chaos.report import analyse, render
from interlock.chaos.traffic import RequestRecord, count_attempts

A, B = "chat/sim-a/m#0", "chat/sim-b/m#1"


def record(
    index: int,
    start: float,
    latency: float = 0.05,
    error: str | None = None,
    attempts: int = 1,
    deployment: str | None = B,
) -> RequestRecord:
    status = 200 if error is None else 503
    return RequestRecord(index, start, latency, status, error, attempts, deployment)


def steady(start: float, end: float, rps: float = 20, latency: float = 0.05) -> list[RequestRecord]:
    count = round((end - start) * rps)
    return [record(i, start + i / rps, latency) for i in range(count)]


def test_percentile_interpolates() -> None:
    assert percentile([], 99) is None
    assert percentile([5.0], 99) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert percentile(list(map(float, range(101))), 99) == pytest.approx(99.0)


def test_attempts_header_is_counted() -> None:
    assert count_attempts(None) == 0
    assert count_attempts("chat/a/m#0=ok:3.0ms") == 1
    assert count_attempts("chat/a/m#0=upstream_error:3.1ms, chat/b/m#1=ok:5.0ms") == 2


def test_phase_stats_count_errors_fallbacks_and_who_answered() -> None:
    records = [
        record(0, 0.1),
        record(1, 0.2, attempts=2),
        record(2, 0.3, error="http_503"),
        record(3, 0.4, deployment=A, latency=0.2),
        record(4, 1.5),  # outside the phase
    ]
    stats = phase_stats("fault", records, 0.0, 1.0)
    assert (stats.requests, stats.errors, stats.fallbacks) == (4, 1, 1)
    assert stats.error_rate == pytest.approx(0.25)
    assert stats.fallback_rate == pytest.approx(1 / 3)
    assert stats.p50_ms == pytest.approx(50.0)
    assert stats.errors_by_kind == (("http_503", 1),)
    assert stats.answered_by == ((A, 1), (B, 2))


def test_settle_is_zero_when_nothing_went_wrong() -> None:
    assert settle_after(steady(0, 5), 1.0, 5.0, limit_ms=75, window_s=1.0, step_s=0.05) == 0.0


def test_settle_waits_for_the_spike_to_leave_the_window() -> None:
    records = steady(0, 6)
    # requests due at 2.0-2.2 s took 400 ms: they complete at 2.4-2.6 s
    records = [record(r.index, r.start_s, 0.4) if 2.0 <= r.start_s < 2.25 else r for r in records]
    settled = settle_after(records, 2.0, 6.0, limit_ms=75, window_s=1.0, step_s=0.05)
    assert settled is not None
    # the last slow one completes at 2.6 s; windows stay bad for one window length after it
    assert 1.55 <= settled <= 1.7


def test_settle_counts_errors_as_bad_and_none_when_never_back() -> None:
    records = steady(0, 4)
    records.append(record(999, 3.9, 0.01, error="http_503"))
    assert settle_after(records, 1.0, 4.0, limit_ms=75, window_s=1.0, step_s=0.05) is None
    slow = steady(0, 2) + steady(2, 4, latency=0.5)
    assert settle_after(slow, 2.0, 4.5, limit_ms=75, window_s=1.0, step_s=0.05) is None


def test_client_detection_is_the_last_impact_before_a_quiet_pause() -> None:
    records = steady(0, 6)
    impacts = [record(1000 + i, 2.0 + i * 0.1, attempts=2) for i in range(4)]  # 2.0 .. 2.3 s
    late = record(2000, 4.0, attempts=2)  # a half-open probe, after a pause
    found = client_detect_after([*records, *impacts, late], 2.0, 6.0, quiet_s=1.0)
    assert found == pytest.approx(0.3)
    assert client_detect_after(records, 2.0, 6.0, quiet_s=1.0) is None
    # impact right up to the fault's removal: no pause seen, so not detected
    assert client_detect_after([*records, *impacts], 2.0, 2.5, quiet_s=1.0) is None


def sample(at: float, state_a: str, opened_a: int = 0) -> DeploymentSample:
    return DeploymentSample(at, {A: state_a, B: "closed"}, {A: opened_a, B: 0})


def test_breaker_open_and_closed_from_the_timeline() -> None:
    timeline = [
        sample(0.9, "closed"),
        sample(1.0, "closed"),
        sample(1.05, "closed", opened_a=1),  # opened and already half-open between two polls
        sample(1.1, "open", opened_a=1),
        sample(3.0, "half_open", opened_a=1),
        sample(3.2, "closed", opened_a=1),
        sample(3.3, "open", opened_a=2),
        sample(3.5, "closed", opened_a=2),
        sample(4.0, "closed", opened_a=2),
    ]
    assert first_open_after(timeline, [A], 1.0) == (pytest.approx(0.05), A)
    assert first_open_after(timeline, None, 1.0) == (pytest.approx(0.05), A)
    assert first_open_after(timeline, [B], 1.0) is None
    assert settled_closed_after(timeline, [A], 2.0) == pytest.approx(1.5)
    assert settled_closed_after(timeline, [A], 5.0) is None


def test_serving_again_is_the_first_answer_from_the_repaired_deployment() -> None:
    records = [*steady(0, 4), record(500, 3.0, deployment=A, latency=0.1)]
    assert serving_again_after(records, [A], 2.5) == pytest.approx(0.6)
    assert serving_again_after(records, [A], 3.5) is None


def test_analyse_puts_it_together() -> None:
    scenario = parse_scenario(
        """
name: t
rps: 20
phases: {baseline: 2, fault: 2, recovery: 2}
actions:
  - {at: fault, do: kill, sim: a}
  - {at: recovery, do: restart, sim: a}
fleet: {simulators: {a: {}, b: {}}}
"""
    )
    records = steady(0, 6)
    records += [record(900, 2.0, attempts=2), record(901, 4.5, deployment=A)]
    actions = [
        ActionRecord("kill", "a", 2.0, 2.0, 2.01, True, "SIGKILL", (A,)),
        ActionRecord("restart", "a", 4.0, 4.0, 4.5, True, "healthy", (A,)),
    ]
    timeline = [sample(1.9, "closed"), sample(2.1, "open", 1), sample(4.6, "half_open", 1)]
    timeline += [sample(4.7, "closed", 1), sample(5.9, "closed", 1)]
    report = analyse(
        scenario,
        gateway="http://gw",
        fleet=True,
        records=records,
        samples=timeline,
        actions=actions,
        monitored=True,
    )
    assert report.total.errors == 0
    assert report.phases[1].fallbacks == 1
    assert report.detect_s == pytest.approx(0.1)
    assert report.detected_deployment == A
    assert report.failover_s == 0.0
    assert report.removal_s == pytest.approx(4.5)
    assert report.breaker_closed_s == pytest.approx(0.2)
    assert report.serving_again_s == pytest.approx(0.05)
    assert report.recover_s == pytest.approx(0.2)
    data = report.to_json()
    assert data["time_to_detect_s"] == 0.1
    assert [p["name"] for p in data["phases"]] == ["baseline", "fault", "recovery", "total"]
    console = Console(record=True, width=200)
    render(report, console)
    shown = console.export_text()
    for measure in ("time to detect", "failover", "p99 recovered", "serving again", "breaker closed"):
        assert measure in shown
    assert "time to recover" in shown and "no removal" not in shown
