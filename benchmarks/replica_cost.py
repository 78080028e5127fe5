"""What one balancing decision costs: ``choose()`` of each gateway balancer over 100 deployments.

The load tracker runs on the real clock with every deployment holding a few requests and latency
samples, as in a busy gateway. Calls are timed in batches (so the timer's own cost is spread thin)
and the median batch is reported per call, after a warm-up.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from dataclasses import dataclass

from interlock.routing.balancers import (
    Balancer,
    LeastOutstanding,
    PeakEwmaP2C,
    PrefixAffinity,
    RoundRobin,
    RouteHints,
    SessionAffinity,
    WeightedRandom,
)
from interlock.routing.load import LoadTracker
from interlock.routing.snapshot import Deployment

__all__ = ["DecisionCost", "measure_decision_costs"]

DEPLOYMENTS = 100


@dataclass(frozen=True, slots=True)
class DecisionCost:
    name: str
    median_us: float
    p90_us: float


def _words(rng: random.Random, count: int) -> str:
    return " ".join(
        rng.choice(("ka", "lo", "mi", "nu", "sole", "tara", "vemi", "dusa")) for _ in range(count)
    )


def _time(
    balancer: Balancer, candidates: tuple[Deployment, ...], hints: list[RouteHints], batch: int, batches: int
) -> tuple[float, float]:
    """Median and p90 of the time per call, in µs."""
    choose = balancer.choose
    for hint in hints[: min(len(hints), 200)]:
        choose(candidates, hint)
    per_call: list[float] = []
    count = len(hints)
    position = 0
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(batches):
            chunk = [hints[(position + i) % count] for i in range(batch)]
            position += batch
            start = time.perf_counter_ns()
            for hint in chunk:
                choose(candidates, hint)
            per_call.append((time.perf_counter_ns() - start) / batch / 1000)
    finally:
        if gc_was_enabled:
            gc.enable()
    per_call.sort()
    return statistics.median(per_call), per_call[int(0.9 * (len(per_call) - 1))]


def measure_decision_costs(quick: bool = False) -> list[DecisionCost]:
    rng = random.Random(7)
    candidates = tuple(
        Deployment(id=f"dep-{i}", model_name="llm", provider="vllm", upstream_model="llm")
        for i in range(DEPLOYMENTS)
    )
    load = LoadTracker()
    for deployment in candidates:
        for _ in range(rng.randint(0, 6)):
            load.start(deployment.id)
        for _ in range(5):
            load.observe_ttft(deployment.id, rng.uniform(0.05, 1.5))
    sessions = [RouteHints(session=f"user-{i}") for i in range(1000)]
    batches = 101 if quick else 301
    out: list[DecisionCost] = []
    simple: list[tuple[str, Balancer]] = [
        ("round-robin", RoundRobin()),
        ("random", WeightedRandom(random.Random(1))),
        ("least-outst.", LeastOutstanding(load, random.Random(1))),
        ("p2c-ewma (default)", PeakEwmaP2C(load, random.Random(1))),
        ("session (rendezvous hash)", SessionAffinity(PeakEwmaP2C(load, random.Random(1)))),
    ]
    for name, balancer in simple:
        out.append(DecisionCost(name, *_time(balancer, candidates, sessions, 100, batches)))
    # Prefix affinity hashes the whole prompt: its cost grows with the prompt, not the fleet.
    for tokens in (500, 6_000):
        contexts = [_words(random.Random(f"ctx-{tokens}-{t}"), tokens) for t in range(40)]
        prompts = [RouteHints(prompt=contexts[rng.randrange(40)] + " " + _words(rng, 20)) for _ in range(400)]
        prefix = PrefixAffinity(load)
        for hint in prompts:  # every replica's record filled
            prefix.choose(candidates, hint)
        timing = _time(prefix, candidates, prompts, 10, 31 if quick else 61)
        out.append(DecisionCost(f"prefix ({tokens:,}-token prompt)", *timing))
    return out
