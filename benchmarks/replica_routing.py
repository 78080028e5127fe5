"""Claim: prefix-affinity routing keeps a fleet of engine replicas within SLO well past the load at which
cache-blind balancers fall over, costs nothing when prompts share nothing, and decides in microseconds.

Three parts, all driving the gateway's own balancer classes (``interlock.routing.balancers``) and its
``LoadTracker``:

* **simulation** (``replica_sim.py``): a discrete-event model on a virtual clock of N engine replicas
  (continuous batching, chunked prefill at a cost per uncached token, a KV cache with prefix reuse and
  LRU eviction, decode slowing with batch size), under a multi-tenant workload with long shared
  contexts and Zipf-skewed popularity, and a no-sharing control. Six balancers over a load sweep and
  several seeds; cache hit rate, TTFT percentiles, TPOT and goodput at TTFT/TPOT SLOs;
* **decision cost**: ``choose()`` of every balancer over 100 deployments;
* **live** (``replica_live.py``): a short run against real simulator processes.

Run: ``python benchmarks/replica_routing.py [--quick] [--seeds N] [--no-live]``. Exits 1 if a target is
missed.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from replica_cost import DecisionCost, measure_decision_costs
from replica_sim import (
    BALANCERS,
    PREFIX_ABS32,
    EngineModel,
    RunStats,
    Slo,
    Workload,
    WorkloadSpec,
    simulate,
)

MODEL = EngineModel()
SLO = Slo()
SHARED = WorkloadSpec("shared-prefix", shared=True)
CONTROL = WorkloadSpec("no-sharing control", shared=False)
WORKLOADS = (SHARED, CONTROL)

#: Load points, as fractions of each workload's estimated capacity without prefix reuse. The shared
#: workload goes past 100% because prefix reuse is what lets a fleet serve more than that; the control
#: cannot, so its sweep stops just past saturation.
FULL_LOADS: dict[str, tuple[float, ...]] = {
    SHARED.name: (0.5, 1.0, 1.25, 1.5, 2.0, 2.5),
    CONTROL.name: (0.25, 0.5, 0.75, 0.9, 1.1),
}
QUICK_LOADS: dict[str, tuple[float, ...]] = {SHARED.name: (1.0, 1.5), CONTROL.name: (0.5, 0.75)}
#: Where the targets are read (see docs/benchmarks.md, "Replica routing", for why these points).
SHARED_TARGET_LOAD = 1.5
CONTROL_TARGET_LOAD = 0.75

#: Share of requests within SLO at which a load point counts as sustained.
SUSTAINED_SHARE = 0.9

GOODPUT_RATIO_MIN = 2.0
CONTROL_GAP_MIN_PCT = -5.0
P2C_DECISION_MAX_US = 20.0


@dataclass(frozen=True, slots=True)
class Plan:
    quick: bool
    seeds: tuple[int, ...]
    requests: int
    loads: dict[str, tuple[float, ...]]
    live: bool
    jobs: int

    @classmethod
    def make(cls, quick: bool, seeds: int | None, requests: int | None, live: bool, jobs: int | None) -> Plan:
        count = seeds if seeds is not None else (2 if quick else 3)
        return cls(
            quick=quick,
            seeds=tuple(range(1, count + 1)),
            requests=requests if requests is not None else (1_500 if quick else 3_000),
            loads=QUICK_LOADS if quick else FULL_LOADS,
            live=live,
            jobs=jobs if jobs is not None else max(1, os.cpu_count() or 1),
        )

    def balancers(self, spec: WorkloadSpec) -> tuple[str, ...]:
        # The abs-32 variant only matters where prompts share prefixes; it is left out of --quick.
        return BALANCERS + ((PREFIX_ABS32,) if spec.shared and not self.quick else ())


Key = tuple[str, float, str]
"""(workload name, load fraction, balancer)."""


def _capacity(spec: WorkloadSpec) -> float:
    return MODEL.capacity(spec.mean_prompt_tokens(), spec.mean_output_tokens())[0]


def _sweep_one(
    spec: WorkloadSpec, seed: int, requests: int, load: float, balancers: Sequence[str]
) -> dict[Key, RunStats]:
    """Every balancer at one load point for one workload and seed (one worker process)."""
    workload = Workload(spec, MODEL, seed, requests)
    rate = load * _capacity(spec)
    return {(spec.name, load, name): simulate(workload, MODEL, rate, name, seed, SLO) for name in balancers}


def run_sweep(plan: Plan) -> dict[Key, list[RunStats]]:
    """All runs, in parallel over (workload, seed, load); results per key in seed order."""
    tasks = [
        (spec, seed, load)
        for spec in WORKLOADS
        for load in sorted(plan.loads[spec.name], reverse=True)  # the slowest first
        for seed in plan.seeds
    ]
    results: dict[Key, list[RunStats]] = {}
    with ProcessPoolExecutor(max_workers=min(plan.jobs, len(tasks))) as pool:
        futures = [
            pool.submit(_sweep_one, spec, seed, plan.requests, load, plan.balancers(spec))
            for spec, seed, load in tasks
        ]
        for future in futures:
            for key, stats in future.result().items():
                results.setdefault(key, []).append(stats)
    return results


def _median(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return statistics.median(finite) if finite else math.nan


def median_of(results: dict[Key, list[RunStats]], key: Key, field: str) -> float:
    return _median([getattr(stats, field) for stats in results[key]])


# --- report ----------------------------------------------------------------------------------------


def _seconds(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.2f}" if value < 10 else f"{value:.0f}"


def workload_tables(spec: WorkloadSpec, plan: Plan, results: dict[Key, list[RunStats]]) -> list[str]:
    capacity = _capacity(spec)
    loads = plan.loads[spec.name]
    balancers = plan.balancers(spec)
    head = f"{'':<14}" + "".join(f"{f'{load:.0%}':>16}" for load in loads)
    offered = f"{'offered req/s':<14}" + "".join(f"{load * capacity:>16.2f}" for load in loads)
    lines = [f"== {spec.name}: {spec.describe()}", head, offered]

    def table(title: str, cell: str) -> None:
        lines.append(title)
        for name in balancers:
            row = f"  {name:<12}"
            for load in loads:
                key = (spec.name, load, name)
                if cell == "goodput":
                    good = median_of(results, key, "goodput_rps")
                    text = f"{good:.2f} ({good / (load * capacity):.0%})"
                elif cell == "hit":
                    text = f"{median_of(results, key, 'hit_rate'):.0%}"
                elif cell == "ttft":
                    text = "/".join(
                        _seconds(median_of(results, key, f)) for f in ("ttft_p50", "ttft_p90", "ttft_p99")
                    )
                else:
                    text = f"{median_of(results, key, 'tpot_p50') * 1000:.1f}"
                row += f"{text:>16}"
            lines.append(row)

    table(
        f"goodput, req/s meeting TTFT <= {SLO.ttft_s:g} s and TPOT <= {SLO.tpot_s * 1000:g} ms "
        "(share of offered)",
        "goodput",
    )
    if spec.shared:
        ratios = []
        for load in loads:
            robin = median_of(results, (spec.name, load, "round-robin"), "goodput_rps")
            prefix = median_of(results, (spec.name, load, "prefix"), "goodput_rps")
            ratios.append(_ratio_text(prefix, robin))
        lines.append(f"  {'prefix/rr':<12}" + "".join(f"{r:>16}" for r in ratios))
    sustained = []
    for name in balancers:
        held = [
            load
            for load in loads
            if median_of(results, (spec.name, load, name), "goodput_rps") >= SUSTAINED_SHARE * load * capacity
        ]
        sustained.append(f"{name} {max(held):.0%}" if held else f"{name} -")
    lines.append(f"  highest load with >= {SUSTAINED_SHARE:.0%} within SLO: " + ", ".join(sustained))
    if PREFIX_ABS32 in balancers:
        lines.append(
            f"  ({PREFIX_ABS32}: the same PrefixAffinity with balance_abs=32, the SGLang router's default, "
            "instead of the gateway's 8; not a default, for comparison)"
        )
    table("cache hit rate (cached prompt tokens / prompt tokens)", "hit")
    table("TTFT p50/p90/p99, s", "ttft")
    table("TPOT p50, ms", "tpot")
    return lines


def _ratio_text(value: float, base: float) -> str:
    if base <= 0:
        return "inf x" if value > 0 else "-"
    ratio = value / base
    return f"{ratio:.2f}x" if ratio < 100 else f"{ratio:.0f}x"


def cost_table(costs: Sequence[DecisionCost]) -> list[str]:
    lines = ["== decision cost: choose() over 100 deployments (median per call, this machine)"]
    for cost in costs:
        lines.append(f"  {cost.name:<34}{cost.median_us:>9.1f} us   p90 {cost.p90_us:>8.1f} us")
    return lines


@dataclass(frozen=True, slots=True)
class TargetLine:
    label: str
    value: str
    limit: str
    ok: bool

    def render(self) -> str:
        return f"target: {self.label:<34}{self.value:<8}{self.limit:<11}{'ok' if self.ok else 'MISSED'}"


def target_lines(results: dict[Key, list[RunStats]], costs: Sequence[DecisionCost]) -> list[TargetLine]:
    prefix = median_of(results, (SHARED.name, SHARED_TARGET_LOAD, "prefix"), "goodput_rps")
    robin = median_of(results, (SHARED.name, SHARED_TARGET_LOAD, "round-robin"), "goodput_rps")
    ratio = prefix / robin if robin > 0 else math.inf
    control_prefix = median_of(results, (CONTROL.name, CONTROL_TARGET_LOAD, "prefix"), "goodput_rps")
    control_least = median_of(results, (CONTROL.name, CONTROL_TARGET_LOAD, "least-outst."), "goodput_rps")
    gap = (control_prefix - control_least) / control_least * 100 if control_least > 0 else math.nan
    p2c = next(c for c in costs if c.name.startswith("p2c-ewma"))
    return [
        TargetLine(
            f"prefix/round-robin goodput @{SHARED_TARGET_LOAD:.0%}",
            _ratio_text(prefix, robin),
            f">= {GOODPUT_RATIO_MIN:g}x",
            ratio >= GOODPUT_RATIO_MIN,
        ),
        TargetLine(
            "prefix vs least-outst. (control)",
            f"{gap:+.1f} %",
            f">= {CONTROL_GAP_MIN_PCT:g} %",
            gap >= CONTROL_GAP_MIN_PCT,
        ),
        TargetLine(
            "P2C decision @100 deployments",
            f"{p2c.median_us:.1f} us",
            f"<= {P2C_DECISION_MAX_US:g} us",
            p2c.median_us <= P2C_DECISION_MAX_US,
        ),
    ]


def per_seed_line(results: dict[Key, list[RunStats]]) -> str:
    """The target quantities of each seed, to show how much they vary."""
    prefix = results[(SHARED.name, SHARED_TARGET_LOAD, "prefix")]
    robin = results[(SHARED.name, SHARED_TARGET_LOAD, "round-robin")]
    ratios = [_ratio_text(p.goodput_rps, r.goodput_rps) for p, r in zip(prefix, robin, strict=True)]
    control = results[(CONTROL.name, CONTROL_TARGET_LOAD, "prefix")]
    least = results[(CONTROL.name, CONTROL_TARGET_LOAD, "least-outst.")]
    gaps = [
        f"{(p.goodput_rps - q.goodput_rps) / q.goodput_rps * 100:+.1f} %" if q.goodput_rps > 0 else "-"
        for p, q in zip(control, least, strict=True)
    ]
    return f"per seed: prefix/round-robin {', '.join(ratios)}; prefix vs least-outst. {', '.join(gaps)}"


def print_header(plan: Plan) -> None:
    print(f"model: {MODEL.describe()}")
    for spec in WORKLOADS:
        rate, how = MODEL.capacity(spec.mean_prompt_tokens(), spec.mean_output_tokens())
        print(f"capacity estimate ({spec.name}, no prefix reuse): {rate:.2f} req/s = {how}")
    print(
        f"SLOs: TTFT <= {SLO.ttft_s:g} s and TPOT <= {SLO.tpot_s * 1000:g} ms; "
        "goodput = offered rate x share of requests meeting both"
    )
    print(
        f"runs: {plan.requests} requests per run (first 20% are warm-up, not measured), seeds "
        f"{', '.join(map(str, plan.seeds))}; every cell is the median over seeds; the same requests "
        "(contents and arrival order) go to every balancer and load point of a seed"
        + ("; --quick: fewer requests, seeds and load points" if plan.quick else "")
    )
    print()


def run(plan: Plan) -> int:
    started = time.perf_counter()
    print_header(plan)
    results = run_sweep(plan)
    swept = time.perf_counter() - started
    for spec in WORKLOADS:
        print("\n".join(workload_tables(spec, plan, results)))
        print()
    print(f"(simulation: {swept:.1f} s wall, {plan.jobs} worker processes)")
    print()
    costs = measure_decision_costs(quick=plan.quick)
    print("\n".join(cost_table(costs)))
    print()
    live_ok = True
    if plan.live:
        from replica_live import run_live

        try:
            print("\n".join(run_live(quick=plan.quick)))
        except Exception as exc:  # the targets still print; the exit status says it failed
            live_ok = False
            print(f"live run FAILED: {type(exc).__name__}: {exc}")
        print()
    print(
        f"targets read at: shared-prefix {SHARED_TARGET_LOAD:.0%} of the capacity without reuse (past the "
        "saturation of the cache-blind balancers, the highest point the default prefix balancer sustains); "
        f"control {CONTROL_TARGET_LOAD:.0%} (its highest point below saturation)"
    )
    print("  " + per_seed_line(results))
    lines = target_lines(results, costs)
    for line in lines:
        print(line.render())
    print(f"(total {time.perf_counter() - started:.0f} s)")
    return 0 if live_ok and all(line.ok for line in lines) else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer requests, seeds and load points")
    parser.add_argument("--seeds", type=int, help="seeds per point (default 3, 2 with --quick)")
    parser.add_argument("--requests", type=int, help="requests per run (default 5000, 2000 with --quick)")
    parser.add_argument("--jobs", type=int, help="worker processes for the simulation (default: CPUs)")
    parser.add_argument("--live", dest="live", action="store_true", default=True, help="run the live part")
    parser.add_argument("--no-live", dest="live", action="store_false", help="skip the live part")
    args = parser.parse_args(argv)
    if args.seeds is not None and args.seeds < 1:
        parser.error("--seeds must be at least 1")
    if args.requests is not None and args.requests < 100:
        parser.error("--requests must be at least 100")
    try:
        return run(Plan.make(args.quick, args.seeds, args.requests, args.live, args.jobs))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
