"""Claim: the gateway never refuses traffic its backends can serve, and sheds load cleanly beyond it.

Starts two simulators with their default settings (64 sequences at once, an unbounded FIFO queue,
20 ms to first token, 10 ms a token, decode slowed 2 % per extra sequence in the batch) and a gateway
in front of them (``interlock up --config``: one model with a deployment on each, every routing
setting at its default). Traffic is a fixed rotation of mixed requests: streaming and not, short
(max_tokens 8) and long (up to 64 tokens) answers, short and long (~1,500 token) prompts.

The fleet's capacity is computed from the simulators' settings and the mix
(:func:`interlock.sim.capacity.capacity_rps`: every slot busy, decode at full-batch speed), then the
mix is offered open loop at 50 %, 90 % and 150 % of it, once straight to the simulators (alternating
between them) and once through the gateway, in the same run:

* goodput: requests answered 200 per second of offered time;
* time to answer: first token for a stream, the whole answer otherwise — what the caller waits for;
* at 150 % the simulators' queues grow without end when called directly; through the gateway, the
  requests it admits should stay fast and the rest get a fast 429 with ``Retry-After``.

Targets (issue: request path hardening): goodput through the gateway >= 0.98 x direct at 50 % and
90 %; at 150 %, the p99 time to answer of admitted requests <= 2 x the unloaded p99 (10 % load).

Run: ``python benchmarks/capacity.py [--quick]``. Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
import uvloop

from interlock.chaos import Fleet, Scenario
from interlock.sim import SimConfig
from interlock.sim.capacity import RequestShape, capacity_rps
from loadgen import Client, Samples, Target, open_loop_mix, percentile
from procs import BackgroundMeter, machine_line, sigterm_as_interrupt

LOADS = (0.5, 0.9, 1.5)
UNLOADED = 0.1
GOODPUT_RATIO = 0.98
P99_RATIO = 2.0
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

_WORDS = [
    "rail",
    "gate",
    "lock",
    "line",
    "safe",
    "fast",
    "slow",
    "work",
    "plan",
    "test",
    "fine",
    "good",
    "next",
    "then",
    "now",
    "here",
]


@dataclass(frozen=True, slots=True)
class Variant:
    """One request in the rotation."""

    stream: bool
    max_tokens: int
    prompt_tokens: int
    seed: int

    def body(self, model: str) -> bytes:
        words = [_WORDS[(self.seed * 7 + i) % len(_WORDS)] for i in range(self.prompt_tokens)]
        prompt = f"q{self.seed}: " + " ".join(words)
        return orjson.dumps(
            {
                "model": model,
                "messages": [{"role": "user", "content": prompt}],
                "max_tokens": self.max_tokens,
                "stream": self.stream,
            }
        )


def traffic_mix() -> list[Variant]:
    """Streaming and not, short and long answers, short and long prompts; several prompts each so
    answer lengths vary."""
    variants = []
    seed = 0
    for stream in (True, False):
        for max_tokens, prompt_tokens in ((8, 20), (64, 20), (64, 1500), (8, 1500)):
            for _ in range(3):
                variants.append(Variant(stream, max_tokens, prompt_tokens, seed))
                seed += 1
    return variants


@dataclass(frozen=True, slots=True)
class Phase:
    """What one rate measured on one path."""

    path: str
    load: float
    rate: float
    ok: int
    errors: int
    rate_limited: int
    offered_s: float
    answer_ms: list[float]

    @property
    def goodput(self) -> float:
        return self.ok / self.offered_s if self.offered_s else 0.0

    def p(self, q: float) -> float:
        return percentile(self.answer_ms, q)


def _post(url: str, body: bytes, key: str | None = None) -> dict[str, object]:
    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with _OPENER.open(request, timeout=30) as response:
        result: dict[str, object] = json.loads(response.read())
        return result


def _get(url: str) -> dict[str, object]:
    with _OPENER.open(url, timeout=10) as response:
        result: dict[str, object] = json.loads(response.read())
        return result


def measure_shapes(sim_url: str, mix: Sequence[Variant]) -> list[RequestShape]:
    """Ask a simulator once per variant (non-streaming, twice so the prefix cache is warm) and read
    the real output length and the prompt tokens it would prefill."""
    shapes = []
    for variant in mix:
        body = Variant(False, variant.max_tokens, variant.prompt_tokens, variant.seed).body("sim-small")
        _post(sim_url + "/v1/chat/completions", body)
        usage = _post(sim_url + "/v1/chat/completions", body)["usage"]
        assert isinstance(usage, dict)
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
        shapes.append(RequestShape(usage["prompt_tokens"] - cached, usage["completion_tokens"]))
    return shapes


def fleet_capacity(fleet: Fleet, mix: Sequence[Variant]) -> float:
    """Requests/s the fleet's simulators serve of ``mix``, computed from their settings and the
    real output lengths (every slot busy, decode at full-batch speed)."""
    sims = list(fleet.sim_urls.values())
    shapes = measure_shapes(sims[0], mix)
    config = next(iter(fleet.sims.values())).config
    return len(sims) * capacity_rps(config, shapes)


def wait_idle(sim_urls: Sequence[str], timeout_s: float = 120.0) -> None:
    """Until no simulator has a request in flight (a phase beyond capacity leaves queues behind)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(_get(url + "/sim/stats")["in_flight"] == 0 for url in sim_urls):
            return
        time.sleep(0.2)
    raise RuntimeError("the simulators did not drain")


def limiter_line(fleet: Fleet) -> str:
    """Each deployment's concurrency limit, decreases and refusals, from ``GET /admin/deployments``."""
    request = urllib.request.Request(
        fleet.gateway_url + "/admin/deployments", headers={"authorization": f"Bearer {fleet.master_key}"}
    )
    with _OPENER.open(request, timeout=10) as response:
        views = json.loads(response.read())
    views = views.get("data", views) if isinstance(views, dict) else views
    return "; ".join(
        f"{v['id']} limit {v['concurrency_limit']} decreases {v.get('limit_decreases')} "
        f"refused {v['rejected']}"
        for v in views
    )


def _clients(targets: Sequence[Target]) -> list[Client]:
    return [Client(target) for target in targets]


def _targets(
    mix: Sequence[Variant], host: str, port: int, path: str, model: str, key: str | None, name: str
) -> list[Target]:
    headers = [("Authorization", f"Bearer {key}")] if key else []
    return [
        Target.post_json(name, host, port, path, v.body(model), headers=headers, stream=v.stream) for v in mix
    ]


def _phase(path: str, load: float, rate: float, samples: Sequence[Samples], offered_s: float) -> Phase:
    answer: list[float] = []
    for s in samples:
        answer.extend(s.ttft if s.ttft else s.latency)
    return Phase(
        path=path,
        load=load,
        rate=rate,
        ok=sum(len(s.latency) for s in samples),
        errors=sum(s.errors for s in samples),
        rate_limited=sum(s.rate_limited for s in samples),
        offered_s=offered_s,
        answer_ms=answer,
    )


async def run_phase(
    path: str, clients: Sequence[Client], load: float, capacity: float, seconds: float
) -> Phase:
    rate = load * capacity
    # beyond capacity a direct call waits in an ever longer queue: let it finish, it is still goodput
    drain = seconds * 2 + 10 if load > 1 else 10.0
    samples = await open_loop_mix(clients, rate, seconds, drain_s=drain)
    return _phase(path, load, rate, samples, seconds)


async def measure(fleet: Fleet, mix: Sequence[Variant], capacity: float, seconds: float) -> list[Phase]:
    sims = list(fleet.sim_urls.values())
    gateway = fleet.gateway_url.removeprefix("http://")
    ghost, gport = gateway.split(":")
    gw = _clients(_targets(mix, ghost, int(gport), "/v1/chat/completions", "chat", fleet.master_key, "gw"))
    direct: list[Client] = []
    per_sim = [
        _clients(
            _targets(
                mix,
                "127.0.0.1",
                int(url.rsplit(":", 1)[1]),
                "/v1/chat/completions",
                "sim-small",
                None,
                f"direct-{i}",
            )
        )
        for i, url in enumerate(sims)
    ]
    # alternate simulators request by request: the rotation visits every variant on both
    for variant_clients in zip(*per_sim, strict=True):
        direct.extend(variant_clients)
    phases = []
    try:
        # warm both paths (connections, the gateway's latency baselines) at a gentle rate
        await open_loop_mix(gw, 0.2 * capacity, 2.0)
        await open_loop_mix(direct, 0.2 * capacity, 1.0)
        wait_idle(sims)
        phases.append(await run_phase("direct", direct, UNLOADED, capacity, seconds))
        for load in LOADS:
            for path, clients in (("direct", direct), ("gateway", gw)):
                wait_idle(sims)
                phases.append(await run_phase(path, clients, load, capacity, seconds))
            print(f"  after {load:.0%}: {limiter_line(fleet)}", flush=True)
    finally:
        for client in (*gw, *direct):
            client.close()
    return phases


def render(phases: Sequence[Phase], capacity: float) -> None:
    print(f"fleet capacity from the simulators' settings: {capacity:.1f} requests/s (2 simulators)")
    print(
        f"{'path':<8}{'load':>6}{'rate/s':>8}{'ok':>7}{'429':>6}{'other err':>10}{'goodput/s':>11}"
        f"{'answer p50':>12}{'p99 ms':>9}"
    )
    for p in phases:
        print(
            f"{p.path:<8}{p.load:>6.0%}{p.rate:>8.1f}{p.ok:>7}{p.rate_limited:>6}"
            f"{p.errors - p.rate_limited:>10}{p.goodput:>11.1f}{p.p(50):>12.0f}{p.p(99):>9.0f}"
        )


def target_lines(phases: Sequence[Phase]) -> list[tuple[str, float, str, bool]]:
    def find(path: str, load: float) -> Phase:
        return next(p for p in phases if p.path == path and p.load == load)

    lines = []
    for load in (0.5, 0.9):
        ratio = find("gateway", load).goodput / max(find("direct", load).goodput, 1e-9)
        lines.append(
            (f"goodput gateway/direct at {load:.0%}", ratio, f">= {GOODPUT_RATIO}", ratio >= GOODPUT_RATIO)
        )
    unloaded = find("direct", UNLOADED).p(99)
    over = find("gateway", 1.5).p(99) / unloaded
    lines.append(("admitted p99 at 150% / unloaded", over, f"<= {P99_RATIO}", over <= P99_RATIO))
    return lines


def scenario() -> Scenario:
    sim = SimConfig()  # the simulator's defaults, spelled out (a drill's own defaults differ)
    names = ("ttft_ms", "tpot_ms", "prefill_ms_per_token", "batch_penalty", "max_concurrency", "max_queue")
    spec = {name: getattr(sim, name) for name in names}
    return Scenario.model_validate(
        {
            "name": "capacity",
            "model": "chat",
            "rps": 1,
            "phases": {"baseline": 1, "fault": 1, "recovery": 0},
            "fleet": {"simulators": {"a": spec, "b": {**spec, "seed": 1}}},
        }
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="5 s per phase instead of 15 s")
    args = parser.parse_args(argv)
    seconds = 5.0 if args.quick else 15.0
    print(machine_line())
    mix = traffic_mix()
    with sigterm_as_interrupt(), Fleet(scenario()) as fleet:
        meter = BackgroundMeter(fleet.pids)
        capacity = fleet_capacity(fleet, mix)
        phases = uvloop.run(measure(fleet, mix, capacity, seconds))
        busy = meter.cores()
    render(phases, capacity)
    print(f"other processes kept {busy:.2f} cores busy during the run")
    failed = False
    for label, value, limit, ok in target_lines(phases):
        print(f"target: {label:<36}{value:>6.2f}  {limit:<8}{'ok' if ok else 'MISSED'}")
        failed |= not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
