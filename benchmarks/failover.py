"""Claim: one of two deployments killed at 200 requests/s: zero client-visible errors, breaker open
within 1 s, p99 back to baseline within 2 s of the kill. And under 100 requests/s of mixed traffic
(streaming and not, short and long answers; simulators at their default speed), one of two
deployments SIGKILLed, hung (SIGSTOP), ten times slower, or answering 503 to half its requests: zero
client-visible errors, and the p99 over the 10 s after the fault at most 3 x the p99 before it.

Starts two simulator processes and a gateway in front of them (``interlock up --config``, one model
with one deployment on each simulator, every routing setting at its default), drives 200 requests/s
of non-streaming chat open loop, SIGKILLs one simulator mid-run, and measures with the chaos drill
(``interlock.chaos``: the same traffic generator, breaker monitor and numbers as ``interlock chaos``):

* client-visible errors: requests that did not get a 200 with a complete answer, over the whole run;
* breaker open after kill: from the SIGKILL to the first ``GET /admin/deployments`` (polled every
  20 ms) showing the killed deployment's breaker open;
* p99 back to baseline after kill: from the SIGKILL until the p99 of every later 0.5 s window of
  completed requests is within 1.5 × the baseline p99 (with no error in it).

Run: ``python benchmarks/failover.py [--quick]``. Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console

from interlock.chaos import DrillReport, DrillTarget, Fleet, Scenario, load_scenario, render, run_drill_sync
from procs import BackgroundMeter, machine_line, sigterm_as_interrupt

RPS = 200
POLL_S = 0.02
WINDOW_S = 0.5
NOISY_CORES = 0.3
"""A run during which other processes kept more cores than this busy is run again (up to
``MAX_RERUNS`` times, ``QUICK_RERUNS`` with ``--quick``) and the quietest run is reported: latency is
what noise disturbs first."""
MAX_RERUNS = 2
QUICK_RERUNS = 1


def scenario(quick: bool) -> Scenario:
    baseline, fault = (3.0, 5.0) if quick else (5.0, 10.0)
    sim = {"ttft_ms": 20, "tpot_ms": 2}
    return Scenario.model_validate(
        {
            "name": "failover",
            "description": f"one of two deployments SIGKILLed at {RPS} requests/s",
            "model": "chat",
            "rps": RPS,
            "stream": False,
            "phases": {"baseline": baseline, "fault": fault, "recovery": 0},
            "actions": [{"at": "fault", "do": "kill", "sim": "a"}],
            "fleet": {"simulators": {"a": sim, "b": {**sim, "seed": 1}}},
            "measure": {"warmup_s": 1.0, "window_s": WINDOW_S, "poll_s": POLL_S, "step_s": 0.02},
        }
    )


@dataclass(frozen=True, slots=True)
class TargetLine:
    label: str
    value: float | None
    limit: float
    unit: str
    digits: int

    @property
    def ok(self) -> bool:
        return self.value is not None and self.value <= self.limit

    def render(self) -> str:
        suffix = f" {self.unit}" if self.unit else ""
        value = "never" if self.value is None else f"{self.value:.{self.digits}f}{suffix}"
        limit = f"<= {self.limit:g}{suffix}"
        return f"target: {self.label:<36}{value:<9}{limit:<11}{'ok' if self.ok else 'MISSED'}"


def target_lines(report: DrillReport) -> list[TargetLine]:
    return [
        TargetLine("client-visible errors", report.total.errors, 0, "", 0),
        TargetLine("breaker open after kill", report.detect_s, 1.0, "s", 2),
        TargetLine("p99 back to baseline after", report.failover_s, 2.0, "s", 2),
    ]


UNDER_LOAD = ("kill-under-load", "hang-under-load", "slow-under-load", "half-503-under-load")
P99_FACTOR = 3.0


def under_load(name: str, quick: bool) -> Scenario:
    """A shipped mixed-traffic failover scenario (phases shortened with ``--quick``)."""
    scenario = load_scenario(name)
    if not quick:
        return scenario
    phases = {"baseline": 3.0, "fault": 5.0, "recovery": 2.0 if scenario.phases.recovery else 0.0}
    return scenario.with_overrides(phases=phases, actions=[a.model_dump() for a in scenario.actions])


def under_load_lines(name: str, report: DrillReport) -> list[TargetLine]:
    # before: requests that ended before the fault; after: those due in the 10 s after it
    before, after = report.p99_before_fault_ms, report.p99_after_fault_ms
    ratio = after / before if before and after is not None else None
    print(f"{name}: p99 before the fault {before or 0:.0f} ms, in the 10 s after {after or 0:.0f} ms")
    short = name.removesuffix("-under-load")
    return [
        TargetLine(f"{short}: client-visible errors", report.total.errors, 0, "", 0),
        TargetLine(f"{short}: p99 after / before", ratio, P99_FACTOR, "x", 2),
    ]


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def drill_once(drill: Scenario) -> tuple[DrillReport, float]:
    """One drill on a fresh fleet: the report, and the cores other processes kept busy meanwhile."""
    log("starting two simulators and `interlock up`")
    with Fleet(drill) as fleet:
        meter = BackgroundMeter(fleet.pids)
        report = run_drill_sync(drill, DrillTarget.of_fleet(fleet), log)
        return report, meter.cores()


def run(quick: bool) -> int:
    drill = scenario(quick)
    runs = [drill_once(drill)]
    reruns = QUICK_RERUNS if quick else MAX_RERUNS
    while runs[-1][1] > NOISY_CORES and len(runs) <= reruns:
        log(f"other processes kept {runs[-1][1]:.2f} cores busy: running the drill again")
        runs.append(drill_once(drill))
    report, background = min(runs, key=lambda run: run[1])
    print()
    print(f"machine: {machine_line()}")
    print(
        "gateway: interlock up, 1 worker, default routing (p2c-ewma, breaker, retry); upstream: 2 simulator "
        "processes (TTFT 20 ms, 2 ms/token)"
    )
    print(
        f"load: {RPS} rps open loop, non-streaming, latency from each request's due time; breaker states "
        f"polled every {POLL_S * 1000:g} ms; p99 over {WINDOW_S:g} s windows"
    )
    print(f"bg load: other processes kept {background:.2f} cores busy during the reported run", end="")
    print(f" (runs: {len(runs)}, the quietest reported)" if len(runs) > 1 else "")
    if background > NOISY_CORES:
        print(
            "WARNING: the machine was busy with other work: latencies are inflated; rerun on a quiet machine"
        )
    render(report, Console(width=150, highlight=False))
    print()
    lines = target_lines(report)
    for name in UNDER_LOAD:
        drill_report, busy = drill_once(under_load(name, quick))
        print()
        print(f"{name}: other processes kept {busy:.2f} cores busy")
        render(drill_report, Console(width=150, highlight=False))
        lines.extend(under_load_lines(name, drill_report))
    print()
    for line in lines:
        print(line.render())
    return 0 if all(line.ok for line in lines) else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="3 s baseline and 5 s after the kill")
    args = parser.parse_args(argv)
    with sigterm_as_interrupt():
        try:
            return run(args.quick)
        except KeyboardInterrupt:
            print("interrupted; stopped the gateway and the simulators", file=sys.stderr)
            return 130


if __name__ == "__main__":
    sys.exit(main())
