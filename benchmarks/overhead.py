"""Claim: the gateway adds well under a millisecond, stays lean, and does not grow.

Starts a simulator upstream that answers at once (every delay 0), a one-worker gateway in front of it
(virtual-key auth, request logging to SQLite on) and, as the floor, a minimal pass-through proxy in
front of it (``minproxy.py``: a few dozen lines of asyncio on uvloop, no framework). The gateway and
the proxy share one CPU, the upstream and the load generator the other. Every measurement alternates
rounds between the sides (the order rotating every round) so that machine noise hits them all, and the
gateway's claims that must hold on any machine are ratios to the proxy's figures of the same run:

* non-streaming chat at 500 requests/s: added latency p50/p90/p99 (side - direct, per percentile)
  and the gateway's own ``x-interlock-overhead-ms``;
* streaming chat: added time to first token and added total time;
* concurrency 1, paced (1 ms between requests, the sides taking turns request by request) and
  back-to-back (a closed loop of one request at a time per side, in alternating rounds): added p50
  with no queueing anywhere, and gateway-added / proxy-added. At 500 rps the direct path shares its
  core between the load generator and the simulator's post-response work, which a proxied path
  partly overlaps, so the open-loop "added" can read lower than a proxy's true cost; these rows
  cannot;
* CPU time per request (utime + stime from /proc) of the gateway and of the proxy over the same fixed
  number of requests (closed loop, 8 concurrent), chat and 32-token streams;
* a rate sweep (gateway only): the highest rate at which added p99 stays within 5 ms;
* the gateway's RSS over 100k requests (10k with ``--quick``).

Run: ``python benchmarks/overhead.py [--quick] [--repeat N]``. Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
import uvloop

from interlock.server.thread import free_port
from interlock.sim import SimConfig
from interlock.sim.runner import config_to_args
from loadgen import Client, Result, Samples, Target, closed_loop, open_loop, percentile
from procs import (
    BackgroundMeter,
    Child,
    CpuPlan,
    cpu_seconds,
    machine_line,
    plan_cpus,
    rss_mb,
    sigterm_as_interrupt,
    spawn,
    wait_http_ok,
)

HOST = "127.0.0.1"
CHAT_RPS = 500
STREAM_RPS = 100
SWEEP_RATES = (250, 500, 1000, 1500, 2000, 2500, 3000, 4000, 5000)
SWEEP_P99_LIMIT_MS = 5.0
OUTPUT_TOKENS = 32
NOISY_CORES = 0.15
PERCENTILES = (50, 90, 99)
CPU_CONCURRENCY = 8
WARM_UP = 20
"""Requests at the start of every concurrency-1 block that are sent but not kept."""
CPU_RATIO_LIMIT = 4.0
ADDED_RATIO_LIMIT = 3.0


@dataclass(frozen=True, slots=True)
class Plan:
    """How long each part runs."""

    quick: bool
    repeat: int
    window_s: float
    sweep_window_s: float
    sweep_rounds: int
    rss_requests: int
    max_reruns: int
    """Rounds each measurement may run again when other processes disturbed them."""
    single_requests: int
    """Paced requests per side, one at a time."""
    serial_requests: int
    """Back-to-back requests per side per round, one at a time."""
    cpu_chat_requests: int
    """Non-streaming requests per side per round of the CPU comparison."""
    cpu_stream_requests: int

    @classmethod
    def make(cls, quick: bool, repeat: int) -> Plan:
        if quick:
            return cls(True, repeat, 1.0, 0.8, 1, 10_000, 0, 300, 150, 1000, 300)
        return cls(False, repeat, 5.0, 2.0, repeat, 100_000, repeat, 2000, 1000, 10_000, 2000)


@dataclass(frozen=True, slots=True)
class Rig:
    """The running upstream, gateway and minimal proxy."""

    sim: Child
    gateway: Child
    proxy: Child
    sim_port: int
    gateway_port: int
    proxy_port: int
    key: str
    db_path: Path
    cpus: CpuPlan

    def pid(self, side: str) -> int | None:
        """The process serving ``side`` (None for direct: its CPU is the upstream's)."""
        return {"gateway": self.gateway.pid, "proxy": self.proxy.pid}.get(side)

    def pids(self) -> tuple[int, ...]:
        return (self.gateway.pid, self.proxy.pid, self.sim.pid)


# --- starting things -------------------------------------------------------------------------------


def start_sim(tmp: Path, cpus: CpuPlan) -> tuple[Child, int]:
    port = free_port(HOST)
    config = SimConfig(
        host=HOST,
        port=port,
        name="bench-upstream",
        ttft_ms=0,
        tpot_ms=0,
        prefill_ms_per_token=0,
        output_tokens_min=OUTPUT_TOKENS,
        output_tokens_max=OUTPUT_TOKENS,
        max_concurrency=4096,
    )
    command = [sys.executable, "-m", "interlock.sim", *config_to_args(config)]
    sim = spawn("simulator", command, tmp / "sim.log", cpus.rig)
    wait_http_ok(f"http://{HOST}:{port}/health", sim)
    return sim, port


def gateway_config(tmp: Path, sim_port: int, master_key: str) -> str:
    return f"""
master_key: {master_key}
store: sqlite:///{tmp}/interlock.db
logging: {{request_log: true}}
providers:
  upstream: {{kind: openai, base_url: http://{HOST}:{sim_port}/v1}}
models:
  chat:
    deployments:
      - {{provider: upstream, model: sim-small, price: {{input: 1.0, output: 2.0}}}}
"""


def gateway_command(config_path: Path, port: int) -> list[str]:
    script = Path(sys.executable).with_name("interlock")
    head = (
        [str(script)]
        if script.exists()
        else [sys.executable, "-c", "from interlock.cli.main import main; main()"]
    )
    return [*head, "up", "--config", str(config_path), "--host", HOST, "--port", str(port), "--workers", "1"]


def start_gateway(tmp: Path, sim_port: int, cpus: CpuPlan) -> tuple[Child, int, str]:
    master_key = "sk-bench-" + secrets.token_hex(16)
    config_path = tmp / "interlock.yaml"
    config_path.write_text(gateway_config(tmp, sim_port, master_key), encoding="utf-8")
    port = free_port(HOST)
    gateway = spawn("gateway", gateway_command(config_path, port), tmp / "gateway.log", cpus.server)
    wait_http_ok(f"http://{HOST}:{port}/healthz", gateway)
    return gateway, port, master_key


def start_proxy(tmp: Path, sim_port: int, cpus: CpuPlan) -> tuple[Child, int]:
    """The floor, pinned like the gateway (the two never carry load at the same time)."""
    port = free_port(HOST)
    script = Path(__file__).with_name("minproxy.py")
    command = [sys.executable, str(script), str(port), str(sim_port), HOST]
    proxy = spawn("minimal proxy", command, tmp / "proxy.log", cpus.server)
    wait_http_ok(f"http://{HOST}:{port}/health", proxy)
    return proxy, port


def create_virtual_key(port: int, master_key: str) -> str:
    request = urllib.request.Request(
        f"http://{HOST}:{port}/admin/keys",
        data=orjson.dumps({"name": "benchmark"}),
        headers={"Authorization": f"Bearer {master_key}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(orjson.loads(response.read())["key"])


# --- requests --------------------------------------------------------------------------------------

_SYSTEM = (
    "You are a concise assistant for an operations team. Answer in plain English, cite the runbook "
    "section when you use one, and say so when you are not sure. Never invent command-line flags."
)
_USER = (
    "Our nightly batch job that exports the billing tables to the warehouse failed twice this week "
    "with a timeout after about forty minutes. The job reads from the replica, writes parquet files "
    "to object storage and then triggers the warehouse load. Nothing changed in the job itself, but "
    "the replica was moved to a new instance type on Monday. What should we check first, in which "
    "order, and which metrics would tell us whether the replica or the object store is the slow part? "
    "Please keep the answer short: a numbered list of at most five steps."
)


def chat_body(model: str, stream: bool) -> bytes:
    body: dict[str, object] = {
        "model": model,
        "messages": [
            {"role": "system", "content": _SYSTEM},
            {"role": "user", "content": _USER},
        ],
        "max_tokens": 64,
        "temperature": 0.7,
    }
    if stream:
        body["stream"] = True
    return orjson.dumps(body)


def targets(rig: Rig, stream: bool) -> dict[str, Target]:
    """One target per side. The proxy forwards the direct request unchanged, so it gets its bytes."""
    auth = [("Authorization", f"Bearer {rig.key}")]
    path = "/v1/chat/completions"
    direct, gateway = chat_body("sim-small", stream), chat_body("chat", stream)
    return {
        "direct": Target.post_json("direct", HOST, rig.sim_port, path, direct, stream=stream),
        "gateway": Target.post_json(
            "gateway", HOST, rig.gateway_port, path, gateway, headers=auth, stream=stream
        ),
        "proxy": Target.post_json("proxy", HOST, rig.proxy_port, path, direct, stream=stream),
    }


class CountingClient(Client):
    """A client that counts the requests it was given (the request log is checked against them)."""

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self.submitted = 0

    def submit(self, scheduled: float, callback: Callable[[Result], None]) -> None:
        self.submitted += 1
        super().submit(scheduled, callback)


Sides = Mapping[str, Client]
"""Clients by side: "direct", and the servers under test ("gateway", "proxy")."""


# --- measuring -------------------------------------------------------------------------------------


def rotated(names: Sequence[str], turn: int) -> list[str]:
    """``names`` starting at ``turn``: over rounds, every side runs in every position."""
    k = turn % len(names)
    return [*names[k:], *names[:k]]


@dataclass(frozen=True, slots=True)
class Rounds:
    """Samples of alternating rounds, one per side per round."""

    rounds: list[dict[str, Samples]]
    background_cores: float
    """Cores other processes on the machine kept busy during the kept rounds (noise), on average."""

    def sides(self) -> list[str]:
        """The sides under test (all but direct)."""
        return [side for side in self.rounds[0] if side != "direct"]

    def requests(self, side: str = "gateway") -> int:
        return sum(r[side].count for r in self.rounds)

    def errors(self, side: str | None = None) -> int:
        """Failed requests of every side, or of ``side`` and direct."""
        names = None if side is None else ("direct", side)
        return sum(s.errors for r in self.rounds for n, s in r.items() if names is None or n in names)

    def stat(self, side: str, metric: str, q: float) -> float:
        """Median over rounds of one side's ``q``-th percentile of ``metric``."""
        return statistics.median(percentile(getattr(r[side], metric), q) for r in self.rounds)

    def added(self, metric: str, q: float, side: str = "gateway") -> float:
        """Median over rounds of (side - direct) at the ``q``-th percentile."""
        return statistics.median(
            percentile(getattr(r[side], metric), q) - percentile(getattr(r["direct"], metric), q)
            for r in self.rounds
        )

    def header_p50(self) -> float:
        return statistics.median(percentile(r["gateway"].overhead, 50) for r in self.rounds)


@dataclass(frozen=True, slots=True)
class Comparison(Rounds):
    """Open-loop rounds at one rate, and the CPU time of each server under test over all of them."""

    rate: float
    cpu_s: dict[str, float]
    sent_all: dict[str, int]
    """Requests per side of every round run, discarded ones included (the CPU time covers them all)."""
    discarded: int
    """Rounds run again because other processes were busy meanwhile."""

    def cpu_us_per_request(self, side: str = "gateway") -> float:
        return self.cpu_s[side] / max(1, self.sent_all[side]) * 1e6

    def cpu_share(self, side: str = "gateway") -> float:
        """Fraction of one core the side's server used at this rate."""
        return self.cpu_us_per_request(side) * self.rate / 1e6


def server_cpu(rig: Rig, sides: Sequence[str]) -> dict[str, float]:
    """CPU seconds so far of the server behind each side that has one."""
    return {side: cpu_seconds(pid) for side in sides if (pid := rig.pid(side)) is not None}


async def compare(
    clients: Sides, rate: float, window_s: float, rounds: int, rig: Rig, max_reruns: int
) -> Comparison:
    """Alternate ``rounds`` open-loop windows at ``rate`` over the sides of ``clients``.

    A round during which other processes kept more than ``NOISY_CORES`` busy is run again, up to
    ``max_reruns`` times; then rounds are kept as they are.
    """
    names = list(clients)
    kept: list[dict[str, Samples]] = []
    noise: list[float] = []
    discarded = 0
    sent = dict.fromkeys(names, 0)
    cpu_before = server_cpu(rig, names)
    while len(kept) < rounds:
        meter = BackgroundMeter(rig.pids())
        samples = {}
        for name in rotated(names, len(kept) + discarded):
            samples[name] = await open_loop(clients[name], rate, window_s)
            sent[name] += samples[name].count
        background = meter.cores()
        if background > NOISY_CORES and discarded < max_reruns:
            discarded += 1
            continue
        kept.append(samples)
        noise.append(background)
    await asyncio.sleep(0.6)  # let the request-log writer flush what these requests queued
    cpu = {side: seconds - cpu_before[side] for side, seconds in server_cpu(rig, names).items()}
    return Comparison(
        rounds=kept,
        background_cores=statistics.mean(noise),
        rate=rate,
        cpu_s=cpu,
        sent_all=sent,
        discarded=discarded,
    )


def _first_token_ms(answer: Result) -> float:
    """Latency of one answer in ms from its send time: to the first token for streams."""
    end = answer.first_token if answer.first_token is not None else answer.done
    return (end - answer.scheduled) * 1000.0


async def _one(client: Client) -> Result:
    future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
    client.submit(time.perf_counter(), future.set_result)
    return await future


@dataclass(frozen=True, slots=True)
class OneAtATime:
    """Latency (ms, to the first token for streams) of single requests, per side."""

    samples: dict[str, list[float]]

    def p50(self, side: str) -> float:
        return percentile(self.samples[side], 50)

    def added_p50(self, side: str = "gateway") -> float:
        return self.p50(side) - self.p50("direct")


async def one_at_a_time(clients: Sides, count: int, gap_s: float = 0.001) -> OneAtATime:
    """Paced: ``count`` requests per side, one in flight at a time, the sides taking turns, with
    ``gap_s`` between requests (so every request finds the servers idle)."""
    result = OneAtATime({name: [] for name in clients})
    for index in range(count + WARM_UP):
        for name, client in clients.items():
            answer = await _one(client)
            if answer.status == 200 and index >= WARM_UP:
                result.samples[name].append(_first_token_ms(answer))
            await asyncio.sleep(gap_s)
    return result


async def back_to_back(clients: Sides, count: int, rounds: int, rig: Rig) -> Rounds:
    """Back-to-back: per round and side, ``count`` requests in a closed loop of one, each sent as
    soon as the previous answer is in; the sides take turns round by round."""
    names = list(clients)
    kept: list[dict[str, Samples]] = []
    noise: list[float] = []
    for turn in range(rounds):
        meter = BackgroundMeter(rig.pids())
        samples = {}
        for name in rotated(names, turn):
            await closed_loop(clients[name], WARM_UP, 1)
            samples[name] = await closed_loop(clients[name], count, 1)
        kept.append(samples)
        noise.append(meter.cores())
    return Rounds(kept, statistics.mean(noise))


@dataclass(frozen=True, slots=True)
class CpuRun:
    """CPU time of each server under test over the same fixed number of requests."""

    requests: dict[str, int]
    cpu_s: dict[str, float]
    errors: int
    background_cores: float

    def us_per_request(self, side: str) -> float:
        return self.cpu_s[side] / max(1, self.requests[side]) * 1e6

    def ratio(self) -> float:
        """Gateway CPU per request over the proxy's."""
        return self.us_per_request("gateway") / max(1e-9, self.us_per_request("proxy"))


async def cpu_run(clients: Sides, count: int, rounds: int, rig: Rig) -> CpuRun:
    """``rounds`` alternating closed-loop rounds of ``count`` requests per side, ``CPU_CONCURRENCY``
    in flight. Each server's CPU time is read over the whole run (its idle time during the other
    side's rounds included), so that work its background threads do later is counted too."""
    names = list(clients)
    requests = dict.fromkeys(names, 0)
    errors = 0
    meter = BackgroundMeter(rig.pids())
    before = server_cpu(rig, names)
    for turn in range(rounds):
        for name in rotated(names, turn):
            samples = await closed_loop(clients[name], count, CPU_CONCURRENCY)
            requests[name] += samples.count
            errors += samples.errors
    await asyncio.sleep(0.6)  # let the request-log writer flush what these requests queued
    cpu = {side: seconds - before[side] for side, seconds in server_cpu(rig, names).items()}
    return CpuRun(requests, cpu, errors, meter.cores())


@dataclass(frozen=True, slots=True)
class SweepStep:
    comparison: Comparison
    held: bool
    rig_limited: bool


async def sweep(clients: Sides, plan: Plan, rig: Rig) -> list[SweepStep]:
    """Step the rate up until added p99 exceeds the limit (or the upstream side cannot keep up)."""
    steps: list[SweepStep] = []
    for rate in SWEEP_RATES:
        comparison = await compare(
            clients, rate, plan.sweep_window_s, plan.sweep_rounds, rig, plan.max_reruns
        )
        added_p99 = comparison.added("latency", 99)
        held = added_p99 <= SWEEP_P99_LIMIT_MS and comparison.errors() == 0
        rig_limited = comparison.stat("direct", "latency", 99) > SWEEP_P99_LIMIT_MS
        steps.append(SweepStep(comparison, held, rig_limited))
        if not held or rig_limited:
            break
    return steps


@dataclass(frozen=True, slots=True)
class RssRun:
    marks: list[tuple[int, float]]
    throughput_rps: float
    cpu_us_per_request: float
    errors: int


async def rss_run(chat: Client, stream: Client, total: int, gateway_pid: int) -> RssRun:
    """Closed-loop load (9 in 10 requests non-streaming), sampling VmRSS at 0, ¼, ½, ¾ and all."""
    thresholds = [total * i // 4 for i in range(1, 5)]
    marks = [(0, rss_mb(gateway_pid))]
    done = 0

    def on_done() -> None:
        nonlocal done
        done += 1
        if thresholds and done >= thresholds[0]:
            marks.append((thresholds.pop(0), rss_mb(gateway_pid)))

    cpu_before = cpu_seconds(gateway_pid)
    started = time.perf_counter()
    streams = total // 10
    results = await asyncio.gather(
        closed_loop(chat, total - streams, 14, on_done), closed_loop(stream, streams, 2, on_done)
    )
    wall = time.perf_counter() - started
    cpu = cpu_seconds(gateway_pid) - cpu_before
    errors = sum(r.errors for r in results)
    return RssRun(marks, total / wall, cpu / total * 1e6, errors)


@dataclass(frozen=True, slots=True)
class Report:
    chat: Comparison
    stream: Comparison
    steps: list[SweepStep]
    rss: RssRun
    single_chat: OneAtATime
    single_stream: OneAtATime
    serial_chat: Rounds
    serial_stream: Rounds
    cpu_chat: CpuRun
    cpu_stream: CpuRun
    gateway_sent: int
    """Requests sent to the gateway in all, warm-ups included."""


async def against_floor(chat: Sides, stream: Sides, plan: Plan, rig: Rig) -> tuple[CpuRun, CpuRun]:
    """CPU per request of the gateway and the proxy: chat, then streams."""
    servers = ("gateway", "proxy")
    cpu_chat = await cpu_run({s: chat[s] for s in servers}, plan.cpu_chat_requests, plan.repeat, rig)
    cpu_stream = await cpu_run({s: stream[s] for s in servers}, plan.cpu_stream_requests, plan.repeat, rig)
    return cpu_chat, cpu_stream


async def at_concurrency_one(
    chat: Sides, stream: Sides, plan: Plan, rig: Rig
) -> tuple[OneAtATime, OneAtATime, Rounds, Rounds]:
    """Paced chat and streams, then back-to-back chat and streams."""
    return (
        await one_at_a_time(chat, plan.single_requests),
        await one_at_a_time(stream, plan.single_requests),
        await back_to_back(chat, plan.serial_requests, plan.repeat, rig),
        await back_to_back(stream, plan.serial_requests, plan.repeat, rig),
    )


async def measure(rig: Rig, plan: Plan, say: Callable[[str], None]) -> Report:
    chat = {name: CountingClient(t) for name, t in targets(rig, stream=False).items()}
    stream = {name: CountingClient(t) for name, t in targets(rig, stream=True).items()}
    everyone = [*chat.values(), *stream.values()]
    try:
        await asyncio.gather(*(c.warm(32) for c in everyone))
        say(f"RSS run: {plan.rss_requests} requests, closed loop …")
        rss = await rss_run(chat["gateway"], stream["gateway"], plan.rss_requests, rig.gateway.pid)
        for name in ("direct", "proxy"):  # the other sides' warm-up
            await open_loop(chat[name], CHAT_RPS, 0.5)
        say(f"non-streaming chat at {CHAT_RPS} rps, {plan.repeat} rounds of {plan.window_s:g} s per side …")
        chat_rate = await compare(chat, CHAT_RPS, plan.window_s, plan.repeat, rig, plan.max_reruns)
        say(f"streaming chat at {STREAM_RPS} rps …")
        stream_rate = await compare(stream, STREAM_RPS, plan.window_s, plan.repeat, rig, plan.max_reruns)
        say("one request at a time, paced and back-to-back …")
        single_chat, single_stream, serial_chat, serial_stream = await at_concurrency_one(
            chat, stream, plan, rig
        )
        say(f"CPU per request, gateway and proxy, {CPU_CONCURRENCY} in flight …")
        cpu_chat, cpu_stream = await against_floor(chat, stream, plan, rig)
        say("rate sweep …")
        steps = await sweep({s: chat[s] for s in ("direct", "gateway")}, plan, rig)
        return Report(
            chat=chat_rate,
            stream=stream_rate,
            steps=steps,
            rss=rss,
            single_chat=single_chat,
            single_stream=single_stream,
            serial_chat=serial_chat,
            serial_stream=serial_stream,
            cpu_chat=cpu_chat,
            cpu_stream=cpu_stream,
            gateway_sent=chat["gateway"].submitted + stream["gateway"].submitted,
        )
    finally:
        for client in everyone:
            client.close()


def count_logged(db_path: Path) -> int | None:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as db:
            return int(db.execute("SELECT count(*) FROM request_log").fetchone()[0])
    except sqlite3.Error:
        return None


# --- printing --------------------------------------------------------------------------------------


def _f(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}"


def ratio(gateway: float, proxy: float) -> float:
    """``gateway / proxy``; infinite when the proxy's figure is not positive (a noise artefact)."""
    return gateway / proxy if proxy > 0 else math.inf


def latency_table(rows: Sequence[tuple[str, Comparison, str]]) -> list[str]:
    head = (
        f"{'what':<22}{'via':<9}{'rps':>4}{'n':>7}   {'direct p50/p90/p99':>20}   {'via p50/p90/p99':>20}"
        f"   {'added p50/p90/p99':>20}{'hdr p50':>9}{'cpu µs/req':>12}{'bg load':>9}{'errors':>8}"
    )
    lines = [head, "-" * len(head)]
    for label, c, metric in rows:
        for side in c.sides():
            d = "/".join(_f(c.stat("direct", metric, q)) for q in PERCENTILES)
            v = "/".join(_f(c.stat(side, metric, q)) for q in PERCENTILES)
            a = "/".join(_f(c.added(metric, q, side)) for q in PERCENTILES)
            header = _f(c.header_p50(), 3) if side == "gateway" else "-"
            lines.append(
                f"{label:<22}{side:<9}{c.rate:>4.0f}{c.requests(side):>7}   {d:>20}   {v:>20}   {a:>20}"
                f"{header:>9}{c.cpu_us_per_request(side):>12.0f}"
                f"{c.background_cores:>9.2f}{c.errors(side):>8}"
            )
    return lines


@dataclass(frozen=True, slots=True)
class SingleRow:
    """One concurrency-1 measurement: p50 latencies (ms) of the three sides."""

    label: str
    direct: float
    gateway: float
    proxy: float
    per_side: int
    background_cores: float | None

    @classmethod
    def paced(cls, label: str, single: OneAtATime) -> SingleRow:
        direct, gateway, proxy = (single.p50(s) for s in ("direct", "gateway", "proxy"))
        return cls(label, direct, gateway, proxy, len(single.samples["gateway"]), None)

    @classmethod
    def serial(cls, label: str, rounds: Rounds, metric: str) -> SingleRow:
        direct = rounds.stat("direct", metric, 50)
        # Added figures are medians of per-round differences; put them back on the direct median.
        gateway = direct + rounds.added(metric, 50, "gateway")
        proxy = direct + rounds.added(metric, 50, "proxy")
        return cls(label, direct, gateway, proxy, rounds.requests(), rounds.background_cores)

    def ratio(self) -> float:
        return ratio(self.gateway - self.direct, self.proxy - self.direct)


def single_rows(report: Report) -> tuple[list[SingleRow], list[SingleRow]]:
    """Chat rows and streaming-TTFT rows at concurrency 1."""
    chat = [
        SingleRow.paced("chat, paced 1 ms", report.single_chat),
        SingleRow.serial("chat, back-to-back", report.serial_chat, "latency"),
    ]
    stream = [
        SingleRow.paced("stream TTFT, paced 1 ms", report.single_stream),
        SingleRow.serial("stream TTFT, back-to-back", report.serial_stream, "ttft"),
    ]
    return chat, stream


def single_table(rows: Sequence[SingleRow]) -> list[str]:
    head = (
        f"{'concurrency 1 (p50, ms)':<27}{'direct':>8}{'gateway':>9}{'proxy':>8}"
        f"{'gw added':>10}{'proxy added':>13}{'gw/proxy':>10}{'n/side':>8}{'bg load':>9}"
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        noise = "-" if row.background_cores is None else _f(row.background_cores)
        lines.append(
            f"{row.label:<27}{_f(row.direct):>8}{_f(row.gateway):>9}{_f(row.proxy):>8}"
            f"{_f(row.gateway - row.direct):>10}{_f(row.proxy - row.direct):>13}"
            f"{_f(row.ratio()) + ' ×':>10}{row.per_side:>8}{noise:>9}"
        )
    return lines


def cpu_table(rows: Sequence[tuple[str, CpuRun]]) -> list[str]:
    head = (
        f"{'CPU per request':<24}{'gateway µs':>12}{'proxy µs':>10}{'gw/proxy':>10}"
        f"{'n/side':>8}{'bg load':>9}{'errors':>8}"
    )
    lines = [head, "-" * len(head)]
    for label, run in rows:
        lines.append(
            f"{label:<24}{run.us_per_request('gateway'):>12.0f}{run.us_per_request('proxy'):>10.0f}"
            f"{_f(run.ratio()) + ' ×':>10}{run.requests['gateway']:>8}{run.background_cores:>9.2f}"
            f"{run.errors:>8}"
        )
    return lines


def sweep_table(steps: Sequence[SweepStep]) -> list[str]:
    head = (
        f"{'rps':>6}{'direct p99':>12}{'gateway p99':>13}{'added p50':>11}{'added p99':>11}"
        f"{'gw cpu':>8}{'µs/req':>8}{'bg load':>9}{'errors':>8}  result"
    )
    lines = [head, "-" * len(head)]
    for step in steps:
        c = step.comparison
        result = "held" if step.held else f"added p99 > {SWEEP_P99_LIMIT_MS:g} ms"
        if step.rig_limited:
            result += " (direct p99 over the limit too: upstream/load-generator core saturated, or noise)"
        direct_p99, gateway_p99 = c.stat("direct", "latency", 99), c.stat("gateway", "latency", 99)
        lines.append(
            f"{c.rate:>6.0f}{_f(direct_p99):>12}{_f(gateway_p99):>13}"
            f"{_f(c.added('latency', 50)):>11}{_f(c.added('latency', 99)):>11}{c.cpu_share():>8.0%}"
            f"{c.cpu_us_per_request():>8.0f}{c.background_cores:>9.2f}{c.errors():>8}  {result}"
        )
    return lines


def highest_held(steps: Sequence[SweepStep]) -> str:
    held = [s.comparison.rate for s in steps if s.held and not s.rig_limited]
    best = f"{max(held):.0f} rps" if held else "none"
    last = steps[-1] if steps else None
    if last is not None and last.held and last.comparison.rate == SWEEP_RATES[-1]:
        return f"{best} (every rate tried)"
    if last is not None and last.rig_limited:
        return f"{best} (then the direct path itself missed the limit: rig-limited or noisy, not the gateway)"
    return best


@dataclass(frozen=True, slots=True)
class TargetLine:
    label: str
    value: float
    limit: float
    unit: str
    digits: int
    errors: int = 0
    """Failed requests in the measurement: any makes the target missed, whatever the latency."""

    @property
    def ok(self) -> bool:
        return self.value <= self.limit and self.errors == 0

    def render(self) -> str:
        value = f"{self.value:.{self.digits}f} {self.unit}"
        limit = f"<= {self.limit:g} {self.unit}"
        status = "ok" if self.ok else "MISSED"
        if self.errors:
            status += f" ({self.errors} failed requests)"
        return f"target: {self.label:<36}{value:<9} {limit:<10} {status}"


def _thousands(count: int) -> str:
    return f"{count / 1000:g}k" if count >= 1000 else str(count)


def target_lines(report: Report, plan: Plan) -> list[TargetLine]:
    marks = dict(report.rss.marks)
    total = plan.rss_requests
    quarter = total // 4
    n = _thousands(total)
    chat_single, stream_single = single_rows(report)
    return [
        # p50 targets read the larger of the open-loop and the one-at-a-time figure: the open-loop
        # one can understate (see the module docstring), the one-at-a-time one cannot.
        TargetLine(
            f"added p50 ({CHAT_RPS} rps | 1 at a time)",
            max(report.chat.added("latency", 50), report.single_chat.added_p50()),
            0.5,
            "ms",
            2,
            report.chat.errors("gateway"),
        ),
        TargetLine(
            f"added p99 at {CHAT_RPS} rps",
            report.chat.added("latency", 99),
            2.0,
            "ms",
            2,
            report.chat.errors("gateway"),
        ),
        TargetLine(
            "streaming TTFT added p50",
            max(report.stream.added("ttft", 50), report.single_stream.added_p50()),
            1.0,
            "ms",
            2,
            report.stream.errors("gateway"),
        ),
        TargetLine(f"RSS after {n} requests", marks[total], 150.0, "MB", 1),
        TargetLine(
            f"RSS growth {_thousands(quarter)}→{n}",
            marks[total] - marks[quarter],
            10.0,
            "MB",
            1,
        ),
        # Against the floor. The concurrency-1 ratios read the larger of paced and back-to-back.
        TargetLine(
            "CPU/request chat, gw/proxy",
            report.cpu_chat.ratio(),
            CPU_RATIO_LIMIT,
            "×",
            2,
            report.cpu_chat.errors,
        ),
        TargetLine(
            "CPU/request stream, gw/proxy",
            report.cpu_stream.ratio(),
            CPU_RATIO_LIMIT,
            "×",
            2,
            report.cpu_stream.errors,
        ),
        TargetLine(
            "added p50 at conc. 1, gw/proxy",
            max(row.ratio() for row in chat_single),
            ADDED_RATIO_LIMIT,
            "×",
            2,
            report.serial_chat.errors(),
        ),
        TargetLine(
            "streaming TTFT added, gw/proxy",
            max(row.ratio() for row in stream_single),
            ADDED_RATIO_LIMIT,
            "×",
            2,
            report.serial_stream.errors(),
        ),
    ]


def print_header(plan: Plan, rig: Rig) -> None:
    print()
    print(f"machine: {machine_line()}")
    print(f"pinning: {rig.cpus.describe()} (the gateway and the minimal proxy share the server cpu)")
    print(
        "gateway: interlock up, 1 worker, virtual-key auth, request log to SQLite; proxy: minproxy.py, "
        "pass-through on uvloop + httptools; upstream: simulator, all delays 0, "
        f"{OUTPUT_TOKENS}-token answers"
    )
    print(
        f"rounds: {plan.repeat} alternating direct/gateway/proxy windows of {plan.window_s:g} s per side; "
        "values are medians over rounds of per-round percentiles, in ms, from the scheduled send time"
    )
    print()


def print_latencies(report: Report, plan: Plan) -> None:
    rows = [
        ("chat (non-streaming)", report.chat, "latency"),
        ("streaming TTFT", report.stream, "ttft"),
        ("streaming total", report.stream, "latency"),
    ]
    print("\n".join(latency_table(rows)))
    lag = report.chat.stat("gateway", "lag", 99)
    print(f"(load generator send lag p99 at {CHAT_RPS} rps: {lag:.2f} ms, included in every side;")
    print(" bg load: cores kept busy by other processes on the machine meanwhile)")
    print()
    chat_single, stream_single = single_rows(report)
    print("\n".join(single_table([*chat_single, *stream_single])))
    print(
        "(paced: the sides take turns request by request, 1 ms apart; back-to-back: each side's next "
        f"request leaves when its answer is in, {plan.repeat} alternating rounds)"
    )
    print()
    print(
        "\n".join(
            cpu_table([("chat (non-streaming)", report.cpu_chat), ("32-token stream", report.cpu_stream)])
        )
    )
    print(
        f"(utime + stime of each server over the run; closed loop, {CPU_CONCURRENCY} in flight, "
        f"{plan.repeat} alternating rounds)"
    )
    print_noise(report)
    print()


def print_noise(report: Report) -> None:
    """How many rounds other processes disturbed, and a warning when the kept ones were noisy."""
    comparisons = (report.chat, report.stream, *(step.comparison for step in report.steps))
    rerun = sum(c.discarded for c in comparisons)
    if rerun:
        print(f"(rounds run again because other processes were busy: {rerun})")
    measured = (report.chat, report.stream, report.serial_chat, report.serial_stream)
    noisy = max(c.background_cores for c in measured)
    if noisy > NOISY_CORES:
        print(
            f"WARNING: other processes kept {noisy:.2f} cores busy during the latency measurements; "
            "these latencies are inflated by that noise: rerun on a quiet machine"
        )


def print_report(report: Report, plan: Plan, rig: Rig, logged: int | None) -> list[TargetLine]:
    print_header(plan, rig)
    print_latencies(report, plan)
    print(f"rate sweep (non-streaming; {plan.sweep_rounds} round(s) of {plan.sweep_window_s:g} s per side):")
    print("\n".join(sweep_table(report.steps)))
    print(f"highest rate held with added p99 <= {SWEEP_P99_LIMIT_MS:g} ms: {highest_held(report.steps)}")
    print()
    rss = report.rss
    print(
        f"RSS of the gateway over {plan.rss_requests} requests (closed loop, concurrency 16, "
        f"1 in 10 streaming{'; --quick: 10k instead of 100k' if plan.quick else ''}):"
    )
    print("  " + "   ".join(f"{count:>6}: {mb:.1f} MB" for count, mb in rss.marks))
    print(
        f"  closed-loop throughput {rss.throughput_rps:.0f} rps, "
        f"gateway CPU {rss.cpu_us_per_request:.0f} µs/request, {rss.errors} errors"
    )
    logged_text = "unknown" if logged is None else str(logged)
    print(f"request-log rows written: {logged_text} of {report.gateway_sent} gateway requests")
    print()
    lines = target_lines(report, plan)
    for line in lines:
        print(line.render())
    return lines


# --- main ------------------------------------------------------------------------------------------


def start_rig(tmp: Path, cpus: CpuPlan, children: list[Child]) -> Rig:
    """Start the upstream, the gateway and the proxy, appending each to ``children`` as it starts."""
    sim, sim_port = start_sim(tmp, cpus)
    children.append(sim)
    gateway, gateway_port, master_key = start_gateway(tmp, sim_port, cpus)
    children.append(gateway)
    proxy, proxy_port = start_proxy(tmp, sim_port, cpus)
    children.append(proxy)
    key = create_virtual_key(gateway_port, master_key)
    return Rig(sim, gateway, proxy, sim_port, gateway_port, proxy_port, key, tmp / "interlock.db", cpus)


def run(plan: Plan) -> int:
    cpus = plan_cpus()
    with tempfile.TemporaryDirectory(prefix="interlock-bench-") as tmp_name:
        tmp = Path(tmp_name)
        children: list[Child] = []
        try:
            rig = start_rig(tmp, cpus, children)
            if cpus.rig is not None:
                os.sched_setaffinity(0, cpus.rig)
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                report = runner.run(measure(rig, plan, lambda text: print(text, file=sys.stderr, flush=True)))
        finally:
            for child in reversed(children):
                child.stop()
        lines = print_report(report, plan, rig, count_logged(rig.db_path))
    return 0 if all(line.ok for line in lines) else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="shorter windows, 10k requests for RSS")
    parser.add_argument("--repeat", type=int, default=3, help="alternating rounds per measurement")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    with sigterm_as_interrupt():
        try:
            return run(Plan.make(args.quick, args.repeat))
        except KeyboardInterrupt:
            print("interrupted; stopped the gateway, the proxy and the upstream", file=sys.stderr)
            return 130


if __name__ == "__main__":
    sys.exit(main())
