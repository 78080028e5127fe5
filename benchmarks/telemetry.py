"""Telemetry's cost: per request on the hot path, and rendering /metrics for a large fleet.

    python benchmarks/telemetry.py [--quick]

Per request: the work the gateway does for telemetry when a request finishes (Prometheus counters
and histograms, the SLO tracker, TPOT) measured directly, CPU time per call over many calls — a
direct measurement, because on a shared 2-core machine an end-to-end on/off comparison cannot
resolve tens of microseconds. Rendering: ``/metrics`` for 50 models and 100 deployments, every
series populated.

Targets (the observability issue): telemetry adds <= 50 µs per request; /metrics renders in
<= 50 ms with 100 deployments and 50 models.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from prometheus_client import generate_latest

from interlock.config.schema import Settings
from interlock.core.context import Attempt, RequestContext, Usage
from interlock.gateway.stages.account import to_record
from interlock.server.runtime import Runtime

MODELS = 50
DEPLOYMENTS_PER_MODEL = 2


def fleet_settings() -> Settings:
    providers = {f"p{i}": {"kind": "openai", "base_url": f"http://127.0.0.1:{9000 + i}/v1"} for i in range(4)}
    models = {
        f"model-{m}": {
            "deployments": [
                {
                    "provider": f"p{(m + d) % 4}",
                    "model": f"up-{m}-{d}",
                    "price": {"input": 1.0, "output": 2.0},
                }
                for d in range(DEPLOYMENTS_PER_MODEL)
            ],
            "slo": {"ttft_ms": 500, "tpot_ms": 50},
        }
        for m in range(MODELS)
    }
    return Settings.model_validate({"providers": providers, "models": models})


def finished_request(runtime: Runtime, model: str, index: int, stream: bool) -> RequestContext:
    route = runtime.snapshot.current.models[model]
    deployment = route.deployments[index % len(route.deployments)]
    ctx = RequestContext(request_id=f"r{index}", operation="chat", model=model, body={}, stream=stream)
    ctx.deployment = deployment
    ctx.attempts.append(Attempt(deployment.id, "ok", 12.0))
    ctx.usage = Usage(prompt_tokens=120, completion_tokens=40, cached_tokens=16)
    now = ctx.received_at
    ctx.first_token_at = now + 0.05 if stream else None
    ctx.token_gaps = [0.01] * 39 if stream else []
    ctx.finished_at = now + 0.45
    ctx.reply_overhead_ms = 0.3
    return ctx


def per_request_cost(runtime: Runtime, calls: int) -> tuple[float, float]:
    """CPU µs per finished request: (record building + telemetry), and telemetry alone."""
    names = list(runtime.snapshot.current.models)
    contexts = [finished_request(runtime, names[i % len(names)], i, stream=i % 2 == 0) for i in range(calls)]
    observe = runtime.telemetry.observe
    started = time.process_time()
    records = [to_record(ctx) for ctx in contexts]
    built = time.process_time()
    for ctx, record in zip(contexts, records, strict=True):
        observe(ctx, record)
    done = time.process_time()
    return (done - started) / calls * 1e6, (done - built) / calls * 1e6


def render_ms(runtime: Runtime, renders: int) -> tuple[float, int]:
    registry = runtime.telemetry.metrics.registry
    samples: list[float] = []
    size = 0
    for _ in range(renders):
        started = time.perf_counter()
        size = len(generate_latest(registry))
        samples.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(samples), size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and renders")
    args = parser.parse_args()
    calls, renders, rounds = (5_000, 10, 3) if args.quick else (50_000, 50, 5)
    runtime = Runtime.build(fleet_settings())
    per_round = [per_request_cost(runtime, calls) for _ in range(rounds)]
    total_us = statistics.median(r[0] for r in per_round)
    telemetry_us = statistics.median(r[1] for r in per_round)
    render, size = render_ms(runtime, renders)
    deployments = sum(len(r.deployments) for r in runtime.snapshot.current.models.values())
    models = len(runtime.snapshot.current.models)
    print(f"fleet: {models} models, {deployments} deployments; every series populated")
    print(f"per finished request (CPU, median of {rounds} rounds of {calls}):")
    print(f"  request record + metrics + SLO        {total_us:7.1f} µs")
    print(f"  metrics + SLO + TPOT (telemetry)      {telemetry_us:7.1f} µs")
    print(f"/metrics: {size / 1024:.0f} KiB, median of {renders} renders {render:.1f} ms")
    print()
    results = [
        ("telemetry per request", telemetry_us, 50.0, "us"),
        ("/metrics render @100 deployments", render, 50.0, "ms"),
    ]
    missed = False
    for name, value, limit, unit in results:
        ok = value <= limit
        missed |= not ok
        print(f"target: {name:<34}{value:6.1f} {unit}  <= {limit:g} {unit}  {'ok' if ok else 'MISSED'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
