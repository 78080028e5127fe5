"""A drill's report: the numbers (see :mod:`interlock.chaos.measure`), as a rich table or as JSON."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rich.console import Console
from rich.table import Table

from interlock.chaos.actions import ActionRecord
from interlock.chaos.measure import (
    PhaseStats,
    client_detect_after,
    percentile,
    phase_stats,
    serving_again_after,
    settle_after,
)
from interlock.chaos.monitor import DeploymentSample, first_open_after, settled_closed_after
from interlock.chaos.scenario import DISRUPTIVE, Scenario
from interlock.chaos.traffic import RequestRecord

__all__ = ["AFTER_FAULT_S", "DrillReport", "analyse", "render"]

AFTER_FAULT_S = 10.0
"""The span after a fault over which ``p99_after_fault_ms`` is read."""

_RESTORATIVE = frozenset({"clear", "restart", "enable"})


@dataclass(frozen=True, slots=True)
class DrillReport:
    """Everything a drill measured. Times in seconds; ``*_s`` measures are None when not reached."""

    scenario: str
    description: str
    gateway: str
    model: str
    rps: float
    stream: bool | Literal["mixed"]
    fleet: bool
    phases: tuple[PhaseStats, ...]
    total: PhaseStats
    actions: tuple[ActionRecord, ...]
    monitored: bool
    """Whether breaker states were read from ``/admin/deployments`` (needs the master key)."""
    baseline_p99_ms: float | None
    p99_before_fault_ms: float | None
    """p99 latency of the requests that ended before the fault (none of them touched by it)."""
    p99_after_fault_ms: float | None
    """p99 latency of the requests due in the ``AFTER_FAULT_S`` after it (errors excepted)."""
    p99_limit_ms: float | None
    window_s: float
    quiet_s: float
    injection_s: float | None
    removal_s: float | None
    watched: tuple[str, ...]
    detect_s: float | None
    detect_source: str
    """``breaker`` (seen open in the admin API) or ``clients`` (errors and fallbacks paused)."""
    detected_deployment: str | None
    client_detect_s: float | None
    impacted: int
    """Requests due between injection and removal that saw an error or needed a fallback."""
    failover_s: float | None
    recover_p99_s: float | None
    breaker_closed_s: float | None
    serving_again_s: float | None
    """Fault removal → the first answer from the repaired deployment."""
    recover_s: float | None
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready view (``--json``)."""
        return {
            "scenario": self.scenario,
            "description": self.description,
            "gateway": self.gateway,
            "model": self.model,
            "rps": self.rps,
            "stream": self.stream,
            "fleet": self.fleet,
            "phases": [_phase_json(p) for p in (*self.phases, self.total)],
            "actions": [
                {
                    "do": a.kind,
                    "target": a.target,
                    "planned_s": _r(a.planned_s),
                    "started_s": _r(a.started_s),
                    "done_s": _r(a.done_s),
                    "ok": a.ok,
                    "detail": a.detail,
                    "deployments": list(a.deployments),
                }
                for a in self.actions
            ],
            "monitored": self.monitored,
            "baseline_p99_ms": _r(self.baseline_p99_ms),
            "p99_before_fault_ms": _r(self.p99_before_fault_ms),
            "p99_after_fault_ms": _r(self.p99_after_fault_ms),
            "p99_limit_ms": _r(self.p99_limit_ms),
            "window_s": self.window_s,
            "quiet_s": self.quiet_s,
            "injection_s": _r(self.injection_s),
            "removal_s": _r(self.removal_s),
            "watched": list(self.watched),
            "time_to_detect_s": _r(self.detect_s),
            "detect_source": self.detect_source,
            "detected_deployment": self.detected_deployment,
            "client_detect_s": _r(self.client_detect_s),
            "impacted": self.impacted,
            "failover_s": _r(self.failover_s),
            "recover_p99_s": _r(self.recover_p99_s),
            "breaker_closed_s": _r(self.breaker_closed_s),
            "serving_again_s": _r(self.serving_again_s),
            "time_to_recover_s": _r(self.recover_s),
            "notes": list(self.notes),
        }


def _around_fault(records: Iterable[RequestRecord], injection: float | None, *, after: bool) -> float | None:
    """p99 of the successful requests that ended before the fault, or that were due in the
    ``AFTER_FAULT_S`` after it."""
    if injection is None:
        return None
    if after:
        chosen = [r for r in records if r.ok and 0 <= r.start_s - injection < AFTER_FAULT_S]
    else:
        chosen = [r for r in records if r.ok and r.end_s <= injection]
    return percentile([r.latency_s * 1000.0 for r in chosen], 99)


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _phase_json(p: PhaseStats) -> dict[str, Any]:
    return {
        "name": p.name,
        "start_s": _r(p.start_s),
        "end_s": _r(p.end_s),
        "requests": p.requests,
        "errors": p.errors,
        "error_rate": round(p.error_rate, 5),
        "fallbacks": p.fallbacks,
        "fallback_rate": round(p.fallback_rate, 5),
        "p50_ms": _r(p.p50_ms, 2),
        "p99_ms": _r(p.p99_ms, 2),
        "errors_by_kind": dict(p.errors_by_kind),
        "answered_by": dict(p.answered_by),
    }


def analyse(
    scenario: Scenario,
    *,
    gateway: str,
    fleet: bool,
    records: Sequence[RequestRecord],
    samples: Sequence[DeploymentSample],
    actions: Sequence[ActionRecord],
    monitored: bool,
    notes: Sequence[str] = (),
) -> DrillReport:
    """Turn a drill's raw observations into its report."""
    measure = scenario.measure
    phases = tuple(phase_stats(name, records, start, end) for name, start, end in scenario.phases.bounds())
    end = max((r.end_s for r in records), default=scenario.phases.total_s)
    total = phase_stats("total", records, 0.0, end + 1.0)
    notes = list(notes)
    injected = next((a for a in actions if a.kind in DISRUPTIVE and a.ok), None)
    removed = next(
        (
            a
            for a in actions
            if injected and a.kind in _RESTORATIVE and a.ok and a.started_s >= injected.done_s
        ),
        None,
    )
    baseline_p99 = phases[0].p99_ms
    limit = baseline_p99 * measure.p99_factor if baseline_p99 is not None else None
    if limit is None:
        notes.append("no successful baseline requests: no p99 to recover to")
    # from the planned time: the phase boundary (the action itself ran a millisecond or two later)
    injection = injected.planned_s if injected else None
    removal = removed.done_s if removed else None
    watched = injected.deployments if injected else ()

    detect_s, source, detected = None, "breaker" if monitored else "clients", None
    client_detect = None
    failover = None
    impacted = 0
    if injection is not None:
        until = removal if removal is not None else end
        impacted = sum(1 for r in records if injection <= r.start_s < until and (not r.ok or r.fallback))
        client_detect = client_detect_after(records, injection, until, measure.quiet_s)
        if injected is not None and injected.kind == "disable":
            source = "operator"
        elif monitored:
            found = first_open_after(samples, watched or None, injection)
            if found is not None:
                detect_s, detected = found
        else:
            detect_s = client_detect
        if limit is not None:
            failover = settle_after(records, injection, until, limit, measure.window_s, measure.step_s)

    recover_p99 = breaker_closed = serving = recover = None
    if removal is not None and limit is not None:
        recover_p99 = settle_after(records, removal, end, limit, measure.window_s, measure.step_s)
        parts = [recover_p99]
        if watched:
            serving = serving_again_after(records, watched, removal)
            parts.append(serving)
            if serving is None:
                notes.append(f"{', '.join(watched)} answered no request after the fault was removed")
        if monitored and watched:
            breaker_closed = settled_closed_after(samples, watched, removal)
            parts.append(breaker_closed)
        recover = None if any(p is None for p in parts) else max(p for p in parts if p is not None)
    return DrillReport(
        scenario=scenario.name,
        description=scenario.description,
        gateway=gateway,
        model=scenario.model,
        rps=scenario.rps,
        stream=scenario.stream,
        fleet=fleet,
        phases=phases,
        total=total,
        actions=tuple(actions),
        monitored=monitored,
        baseline_p99_ms=baseline_p99,
        p99_before_fault_ms=_around_fault(records, injection, after=False),
        p99_after_fault_ms=_around_fault(records, injection, after=True),
        p99_limit_ms=limit,
        window_s=measure.window_s,
        quiet_s=measure.quiet_s,
        injection_s=injection,
        removal_s=removal,
        watched=tuple(watched),
        detect_s=detect_s,
        detect_source=source,
        detected_deployment=detected,
        client_detect_s=client_detect,
        impacted=impacted,
        failover_s=failover,
        recover_p99_s=recover_p99,
        breaker_closed_s=breaker_closed,
        serving_again_s=serving,
        recover_s=recover,
        notes=tuple(notes),
    )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _s(value: float | None, missing: str = "-") -> str:
    return missing if value is None else f"{value:.2f} s"


def _pct(value: float) -> str:
    return f"{value * 100:.2f} %"


def _short(deployment: str) -> str:
    """``chat/sim-a/sim-small#0`` → ``sim-a#0``: the provider and the index tell deployments apart."""
    parts = deployment.split("/")
    return (
        f"{parts[1]}#{deployment.rsplit('#', 1)[1]}" if len(parts) >= 3 and "#" in deployment else deployment
    )


def _shares(p: PhaseStats) -> str:
    ok = sum(n for _, n in p.answered_by)
    return ", ".join(f"{_short(d)} {n * 100 / ok:.0f}%" for d, n in p.answered_by) if ok else "-"


def render(report: DrillReport, console: Console) -> None:
    """Print the report as tables."""
    mode = {True: "streaming", False: "non-streaming", "mixed": "mixed streaming and non-streaming"}[
        report.stream
    ]
    where = "own fleet" if report.fleet else "external"
    title = f"drill {report.scenario}" + (f": {report.description}" if report.description else "")
    console.print(title, style="bold", highlight=False)
    console.print(
        f"gateway {report.gateway} ({where}), model {report.model}, {report.rps:g} rps open loop, {mode}",
        highlight=False,
    )
    table = Table("phase", "window", "requests", "errors", "error rate", "fallbacks", "fallback rate")
    for column in ("p50", "p99", "answered by"):
        table.add_column(column)
    for p in (*report.phases, report.total):
        table.add_row(
            p.name,
            f"{p.start_s:.1f}-{p.end_s:.1f} s" if p.name != "total" else "",
            str(p.requests),
            str(p.errors),
            _pct(p.error_rate),
            str(p.fallbacks),
            _pct(p.fallback_rate),
            _ms(p.p50_ms),
            _ms(p.p99_ms),
            _shares(p),
        )
    console.print(table)
    for a in report.actions:
        status = "ok" if a.ok else "[red]FAILED[/red]"
        console.print(f"  {a.started_s:+7.2f} s  {a.kind} {a.target}  {status}  {a.detail}".rstrip())
    for p in report.phases:
        if p.errors_by_kind:
            kinds = ", ".join(f"{k} x{n}" for k, n in p.errors_by_kind)
            console.print(f"  errors during {p.name}: {kinds}", highlight=False)
    console.print(_measures(report))
    for note in report.notes:
        console.print(f"  note: {note}", style="yellow", highlight=False)


def _measures(report: DrillReport) -> Table:
    table = Table("measure", "value", "from → to")
    p99 = (
        f"p99 <= {report.p99_limit_ms:.1f} ms ({report.window_s:g} s window; baseline "
        f"{report.baseline_p99_ms:.1f} ms), no errors"
        if report.p99_limit_ms is not None and report.baseline_p99_ms is not None
        else "no baseline p99"
    )
    watched = ", ".join(_short(d) for d in report.watched) or "any deployment"
    if report.detect_source == "breaker":
        detect = f"fault → breaker of {_short(report.detected_deployment or watched)} seen open"
    elif report.detect_source == "operator":
        detect = "deployment disabled by the operator: nothing to detect"
    else:
        detect = "fault → client-visible errors/fallbacks pause (no admin API)"
    never = "not reached" if report.injection_s is not None else "no fault"
    table.add_row("time to detect", _s(report.detect_s, never), detect)
    if report.detect_source == "breaker":
        seen = "nothing" if not report.impacted else "no pause"
        table.add_row(
            "clients saw it for",
            _s(report.client_detect_s, seen),
            f"fault → errors/fallbacks pause for {report.quiet_s:g} s "
            f"({report.impacted} request{'' if report.impacted == 1 else 's'} hit)",
        )
    table.add_row("failover", _s(report.failover_s, never), f"fault → {p99}")
    if report.p99_before_fault_ms is not None and report.p99_after_fault_ms is not None:
        ratio = report.p99_after_fault_ms / report.p99_before_fault_ms
        table.add_row(
            "p99 after / before",
            f"{ratio:.2f}x",
            f"{report.p99_after_fault_ms:.1f} ms (due in the {AFTER_FAULT_S:g} s after the fault) / "
            f"{report.p99_before_fault_ms:.1f} ms (ended before it)",
        )
    if report.removal_s is None:
        table.add_row("time to recover", "no removal", "(the scenario never removes the fault)")
        return table
    table.add_row("p99 recovered", _s(report.recover_p99_s, "not reached"), f"removal → {p99}")
    if report.watched:
        table.add_row(
            "serving again", _s(report.serving_again_s, "not reached"), f"removal → {watched} answers"
        )
    if report.monitored and report.watched:
        table.add_row(
            "breaker closed", _s(report.breaker_closed_s, "not reached"), f"removal → {watched} closed"
        )
    table.add_row("time to recover", _s(report.recover_s, "not reached"), "removal → all of the above")
    return table
