"""Claim: one key flooding a model cannot starve the others.

Two simulators with their default settings behind a gateway (every routing setting at its default),
the mixed traffic of ``capacity.py`` (streaming and not, short and long answers and prompts), and ten
keys: nine "light" keys sending the same rate each and one "heavy" key sending 20 times that rate.
Together they offer ``--load`` (default 120 %) of the fleet's capacity computed from the simulators'
settings — the heavy key alone stays below it, so only fair sharing decides who waits.

Two phases, open loop, the same light traffic in both:

* unloaded: the nine light keys alone;
* flooded: the nine light keys and the heavy key.

Reported: each phase's goodput per class of key, 429s, and the light keys' p50/p99 time to answer
(first token for a stream, the whole answer otherwise).

Target (issue: governance): the nine light keys' p99 in the flooded phase <= 1.5 x their p99 in the
unloaded phase.

Run: ``python benchmarks/fairness.py [--quick]``. Exits 1 if the target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
import uvloop

from capacity import (
    _OPENER,
    Variant,
    _phase,
    _targets,
    fleet_capacity,
    scenario,
    traffic_mix,
    wait_idle,
)
from interlock.chaos import Fleet
from loadgen import Client, open_loop_mix, percentile
from procs import BackgroundMeter, machine_line, sigterm_as_interrupt

LIGHT_KEYS = 9
HEAVY_FACTOR = 20
P99_RATIO = 1.5


@dataclass(frozen=True, slots=True)
class Result:
    phase: str
    light_rate: float
    heavy_rate: float
    light_ok: int
    light_429: int
    light_errors: int
    heavy_ok: int
    heavy_429: int
    answer_ms: list[float]
    seconds: float

    def p(self, q: float) -> float:
        return percentile(self.answer_ms, q)


def create_key(fleet: Fleet, name: str) -> str:
    request = urllib.request.Request(
        fleet.gateway_url + "/admin/keys",
        data=orjson.dumps({"name": name}),
        headers={"authorization": f"Bearer {fleet.master_key}", "content-type": "application/json"},
        method="POST",
    )
    with _OPENER.open(request, timeout=10) as response:
        key: str = orjson.loads(response.read())["key"]
        return key


def _clients_for(fleet: Fleet, mix: Sequence[Variant], keys: Sequence[str], name: str) -> list[Client]:
    host, port = fleet.gateway_url.removeprefix("http://").split(":")
    per_key = [_targets(mix, host, int(port), "/v1/chat/completions", "chat", key, name) for key in keys]
    # request i goes to key i % len(keys), each key walking the whole mix
    return [Client(target) for variant_targets in zip(*per_key, strict=True) for target in variant_targets]


async def run_phase(
    name: str, light: list[Client], heavy: list[Client] | None, light_rate: float, seconds: float
) -> Result:
    heavy_rate = light_rate * HEAVY_FACTOR / LIGHT_KEYS if heavy else 0.0
    jobs = [open_loop_mix(light, light_rate, seconds, drain_s=30)]
    if heavy:
        jobs.append(open_loop_mix(heavy, heavy_rate, seconds, drain_s=30))
    light_samples, *rest = await asyncio.gather(*jobs)
    heavy_samples = rest[0] if rest else []
    phase = _phase(name, 0, light_rate, light_samples, seconds)
    return Result(
        phase=name,
        light_rate=light_rate,
        heavy_rate=heavy_rate,
        light_ok=phase.ok,
        light_429=phase.rate_limited,
        light_errors=phase.errors - phase.rate_limited,
        heavy_ok=sum(len(s.latency) for s in heavy_samples),
        heavy_429=sum(s.rate_limited for s in heavy_samples),
        answer_ms=phase.answer_ms,
        seconds=seconds,
    )


async def measure(
    fleet: Fleet, mix: Sequence[Variant], capacity: float, load: float, seconds: float
) -> list[Result]:
    light_keys = [create_key(fleet, f"light-{i}") for i in range(LIGHT_KEYS)]
    heavy_key = create_key(fleet, "heavy")
    light = _clients_for(fleet, mix, light_keys, "light")
    heavy = _clients_for(fleet, mix, [heavy_key], "heavy")
    sims = list(fleet.sim_urls.values())
    unit = load * capacity / (LIGHT_KEYS + HEAVY_FACTOR)
    light_rate = unit * LIGHT_KEYS
    try:
        await open_loop_mix(light, 0.2 * capacity, 2.0)  # warm connections and latency baselines
        wait_idle(sims)
        results = [await run_phase("unloaded", light, None, light_rate, seconds)]
        wait_idle(sims)
        results.append(await run_phase("flooded", light, heavy, light_rate, seconds))
    finally:
        for client in (*light, *heavy):
            client.close()
    return results


def render(results: Sequence[Result], capacity: float, load: float) -> None:
    print(f"fleet capacity from the simulators' settings: {capacity:.1f} requests/s; offered {load:.0%}")
    print(
        f"{'phase':<10}{'light/s':>8}{'heavy/s':>8}{'light ok':>9}{'429':>5}{'err':>5}"
        f"{'heavy ok':>9}{'429':>6}{'light p50':>10}{'p99 ms':>8}"
    )
    for r in results:
        print(
            f"{r.phase:<10}{r.light_rate:>8.1f}{r.heavy_rate:>8.1f}{r.light_ok:>9}{r.light_429:>5}"
            f"{r.light_errors:>5}{r.heavy_ok:>9}{r.heavy_429:>6}{r.p(50):>10.0f}{r.p(99):>8.0f}"
        )


def target_lines(results: Sequence[Result]) -> list[tuple[str, float, str, bool]]:
    _, flooded = results
    ratio = flooded.p(99) / max(results[0].p(99), 1e-9)
    return [("light keys' p99 flooded / unloaded", ratio, f"<= {P99_RATIO}", ratio <= P99_RATIO)]


def refusal_line(results: Sequence[Result]) -> str:
    _, f = results
    light = (f.light_429 + f.light_errors) / max(1, f.light_ok + f.light_429 + f.light_errors)
    heavy = f.heavy_429 / max(1, f.heavy_ok + f.heavy_429)
    return f"refused while flooded: light keys {light:.1%} of their requests, the heavy key {heavy:.1%}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="5 s per phase instead of 15 s")
    parser.add_argument("--load", type=float, default=1.2, help="offered load, as a share of capacity")
    args = parser.parse_args(argv)
    seconds = 5.0 if args.quick else 15.0
    print(machine_line())
    mix = traffic_mix()
    with sigterm_as_interrupt(), Fleet(scenario()) as fleet:
        meter = BackgroundMeter(fleet.pids)
        capacity = fleet_capacity(fleet, mix)
        results = uvloop.run(measure(fleet, mix, capacity, args.load, seconds))
        busy = meter.cores()
    render(results, capacity, args.load)
    print(refusal_line(results))
    print(f"other processes kept {busy:.2f} cores busy during the run")
    failed = False
    for label, value, limit, ok in target_lines(results):
        print(f"target: {label:<40}{value:>6.2f}  {limit:<8}{'ok' if ok else 'MISSED'}")
        failed |= not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
