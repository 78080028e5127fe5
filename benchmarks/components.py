"""Choose the gateway's parts by measurement: upstream HTTP client, HTTP server, JSON library.

1. Upstream HTTP clients doing the gateway's job against a fast loopback upstream (a raw asyncio +
   httptools server in a subprocess on the other core): POST a ~1 KB JSON body and read a ~1 KB JSON
   reply over a keep-alive pool, and read an SSE stream of 50 events. Client CPU µs per request
   (getrusage of this process, all threads, so Rust runtimes' threads count) and requests/s at
   concurrency 1 and 32. Candidates: aiohttp (the first choice), httpx, the gateway's own
   httptools-based client (src/interlock/providers/h1.py, the current choice), and the Rust-backed
   pyreqwest and rnet when they are installed; plus, as a floor, the raw asyncio + httptools
   protocol of benchmarks/loadgen.py.
2. HTTP servers: uvicorn (uvloop + httptools) vs granian, each serving the same minimal ASGI app
   (and the same app behind a Starlette router), one worker pinned to one core, load from the other:
   requests/s, p50/p99 and server CPU µs per request at concurrency 32, p50 at concurrency 1.
3. JSON: orjson vs stdlib json (vs msgspec when installed): µs per loads/dumps of a chat request, a
   chat reply and a stream chunk.

Run: ``python benchmarks/components.py [--quick] [--repeat N] [--only clients,servers,json]``.
Measurement-only packages (not gateway dependencies): ``pip install granian msgspec pyreqwest rnet``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import resource
import statistics
import sys
import tempfile
import time
import timeit
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import orjson
import uvloop

from loadgen import Client, Result, Samples, Target, closed_loop, percentile
from payloads import (
    CHAT_REPLY,
    CHAT_REPLY_OBJ,
    CHAT_REQUEST,
    CHAT_REQUEST_OBJ,
    STREAM_BODY,
    STREAM_CHUNK,
    STREAM_CHUNK_OBJ,
    STREAM_EVENTS,
)
from procs import (
    BackgroundMeter,
    Child,
    CpuPlan,
    free_port,
    group_cpu_seconds,
    group_pids,
    machine_line,
    plan_cpus,
    sigterm_as_interrupt,
    spawn,
    wait_http_ok,
)

HOST = "127.0.0.1"
HERE = Path(__file__).resolve().parent
_JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
_SSE_HEADERS = {"Content-Type": "application/json", "Accept": "text/event-stream"}


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# --- upstream HTTP clients -------------------------------------------------------------------------


class UpstreamClient(Protocol):
    """One candidate client doing the gateway's two upstream jobs."""

    name: str

    async def start(self) -> None: ...

    async def chat(self) -> int:
        """POST the chat request, read the whole reply; return its length."""
        ...

    async def stream(self) -> int:
        """POST the stream request, read the SSE body; return the number of events."""
        ...

    async def close(self) -> None: ...


class SseCounter:
    """Splits a byte stream into server-sent events (blank-line separated) and counts them."""

    def __init__(self) -> None:
        self._rest = b""
        self.events = 0

    def feed(self, chunk: bytes) -> None:
        parts = (self._rest + chunk).split(b"\n\n")
        self._rest = parts.pop()
        self.events += sum(1 for p in parts if p.startswith(b"data:"))


class AiohttpClient:
    """aiohttp configured as src/interlock/providers/http.py configures it."""

    name = "aiohttp"

    def __init__(self, base_url: str) -> None:
        self._base = base_url

    async def start(self) -> None:
        import aiohttp

        connector = aiohttp.TCPConnector(
            limit=0, keepalive_timeout=4.0, ttl_dns_cache=300, enable_cleanup_closed=True
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10.0, sock_read=300.0),
            skip_auto_headers=("User-Agent",),
        )

    async def chat(self) -> int:
        async with self._session.post(self._base + "/chat", data=CHAT_REQUEST, headers=_JSON_HEADERS) as r:
            raw = await r.read()
            _check(r.status)
            return len(raw)

    async def stream(self) -> int:
        counter = SseCounter()
        async with self._session.post(self._base + "/stream", data=CHAT_REQUEST, headers=_SSE_HEADERS) as r:
            _check(r.status)
            async for chunk in r.content.iter_any():
                counter.feed(chunk)
        return counter.events

    async def close(self) -> None:
        await self._session.close()


class HttpxClient:
    name = "httpx"

    def __init__(self, base_url: str) -> None:
        self._base = base_url

    async def start(self) -> None:
        import httpx

        self._client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=256, keepalive_expiry=4.0),
            timeout=httpx.Timeout(300.0, connect=10.0),
        )

    async def chat(self) -> int:
        r = await self._client.post(self._base + "/chat", content=CHAT_REQUEST, headers=_JSON_HEADERS)
        _check(r.status_code)
        return len(r.content)

    async def stream(self) -> int:
        counter = SseCounter()
        request = self._client.build_request(
            "POST", self._base + "/stream", content=CHAT_REQUEST, headers=_SSE_HEADERS
        )
        response = await self._client.send(request, stream=True)
        try:
            _check(response.status_code)
            async for chunk in response.aiter_raw():
                counter.feed(chunk)
        finally:
            await response.aclose()
        return counter.events

    async def close(self) -> None:
        await self._client.aclose()


class PyreqwestClient:
    """pyreqwest: reqwest (Rust, tokio) behind an asyncio interface."""

    name = "pyreqwest"

    def __init__(self, base_url: str) -> None:
        self._base = base_url

    async def start(self) -> None:
        from datetime import timedelta

        from pyreqwest.client import ClientBuilder

        self._client = (
            ClientBuilder()
            .connect_timeout(timedelta(seconds=10))
            .read_timeout(timedelta(seconds=300))
            .pool_idle_timeout(timedelta(seconds=4))
            .http1_only()
            .build()
        )

    async def chat(self) -> int:
        request = (
            self._client.post(self._base + "/chat").headers(_JSON_HEADERS).body_bytes(CHAT_REQUEST).build()
        )
        response = await request.send()
        _check(response.status)
        return len(await response.bytes())

    async def stream(self) -> int:
        counter = SseCounter()
        request = (
            self._client.post(self._base + "/stream")
            .headers(_SSE_HEADERS)
            .body_bytes(CHAT_REQUEST)
            .build_streamed()
        )
        async with request as response:
            _check(response.status)
            reader = response.body_reader
            while (chunk := await reader.read_chunk()) is not None:
                counter.feed(bytes(chunk))
        return counter.events

    async def close(self) -> None:
        await self._client.close()


class RnetClient:
    """rnet: a Rust (tokio, hyper-based) client behind an asyncio interface."""

    name = "rnet"

    def __init__(self, base_url: str) -> None:
        self._base = base_url

    async def start(self) -> None:
        import rnet

        self._client = rnet.Client(
            connect_timeout=10, read_timeout=300, pool_idle_timeout=4, http1_only=True, tcp_nodelay=True
        )

    async def chat(self) -> int:
        response = await self._client.post(self._base + "/chat", body=CHAT_REQUEST, headers=_JSON_HEADERS)
        try:
            _check(int(response.status_code.as_int()))
            return len(await response.bytes())
        finally:
            await response.close()

    async def stream(self) -> int:
        counter = SseCounter()
        response = await self._client.post(self._base + "/stream", body=CHAT_REQUEST, headers=_SSE_HEADERS)
        try:
            _check(int(response.status_code.as_int()))
            async with response.stream() as chunks:
                async for chunk in chunks:
                    counter.feed(bytes(chunk))
        finally:
            await response.close()
        return counter.events


class InterlockClient:
    """The gateway's own client: src/interlock/providers/h1.py behind providers/http.py."""

    name = "interlock h1"

    def __init__(self, base_url: str) -> None:
        self._base = base_url

    async def start(self) -> None:
        from interlock.providers.http import HttpClient, Timeouts

        self._client = HttpClient("bench", self._base, {}, Timeouts())

    async def chat(self) -> int:
        _, raw = await self._client.request_json("POST", "/chat", CHAT_REQUEST)
        return len(raw)

    async def stream(self) -> int:
        return sum([len(batch) async for batch in self._client.event_batches("/stream", CHAT_REQUEST)])

    async def close(self) -> None:
        await self._client.aclose()


class RawClient:
    """Reference floor: the pre-built-request asyncio + httptools protocol of loadgen.py."""

    name = "raw asyncio+httptools"

    def __init__(self, port: int) -> None:
        self._port = port

    async def start(self) -> None:
        headers = [("Accept", "application/json")]
        chat = Target.post_json("chat", HOST, self._port, "/chat", CHAT_REQUEST, headers=headers)
        stream = Target.post_json("stream", HOST, self._port, "/stream", CHAT_REQUEST, stream=True)
        self._chat = Client(chat)
        self._stream = Client(stream)

    async def _one(self, client: Client) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        client.submit(time.perf_counter(), future.set_result)
        result = await future
        _check(result.status)
        return result

    async def chat(self) -> int:
        return (await self._one(self._chat)).body_bytes

    async def stream(self) -> int:
        result = await self._one(self._stream)
        # The protocol does not split events; the body arrived whole, so count what was sent.
        return STREAM_EVENTS if result.body_bytes >= len(STREAM_BODY) else 0

    async def close(self) -> None:
        self._chat.close()
        self._stream.close()


def _check(status: int) -> None:
    if status != 200:
        raise RuntimeError(f"upstream answered {status}")


def candidate_clients(port: int) -> list[UpstreamClient]:
    base = f"http://{HOST}:{port}"
    clients: list[UpstreamClient] = [AiohttpClient(base), HttpxClient(base), InterlockClient(base)]
    if installed("pyreqwest"):
        clients.append(PyreqwestClient(base))
    if installed("rnet"):
        clients.append(RnetClient(base))
    clients.append(RawClient(port))
    return clients


def _process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True, slots=True)
class Run:
    rps: float
    cpu_us: float


async def drive(call: Callable[[], Awaitable[int]], expect: int, concurrency: int, seconds: float) -> Run:
    """Closed loop: ``concurrency`` tasks call ``call`` until ``seconds`` pass."""
    deadline = time.perf_counter() + seconds
    count = 0

    async def worker() -> None:
        nonlocal count
        while time.perf_counter() < deadline:
            got = await call()
            if expect and got != expect:
                raise RuntimeError(f"expected {expect}, got {got}")
            count += 1

    cpu = _process_cpu()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    return Run(count / wall, (_process_cpu() - cpu) / max(1, count) * 1e6)


T = TypeVar("T")
NOISY_CORES = 0.15
MAX_RERUNS = 2


@dataclass
class Noise:
    """Background load from other processes during kept measurements, and how many were rerun."""

    cores: list[float] = field(default_factory=list)
    reruns: int = 0

    def describe(self) -> str:
        if not self.cores:
            return "bg load: not measured"
        return (
            f"bg load from other processes: median {statistics.median(self.cores):.2f} cores, "
            f"max {max(self.cores):.2f}; measurements rerun because of it: {self.reruns}"
        )


async def quietly(measure: Callable[[], Awaitable[T]], pids: Callable[[], list[int]], noise: Noise) -> T:
    """Run ``measure``; run it again (up to MAX_RERUNS times) if other processes were busy meanwhile."""
    for attempt in range(MAX_RERUNS + 1):
        meter = BackgroundMeter(pids())
        result = await measure()
        cores = meter.cores()
        if cores <= NOISY_CORES or attempt == MAX_RERUNS:
            noise.cores.append(cores)
            return result
        noise.reruns += 1
    raise AssertionError("unreachable")


CLIENT_MODES = (("chat", 1), ("chat", 32), ("stream", 1), ("stream", 32))


@dataclass
class ClientResults:
    runs: dict[tuple[str, str, int], list[Run]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    noise: Noise = field(default_factory=Noise)

    def add(self, client: str, mode: str, concurrency: int, run: Run) -> None:
        self.runs.setdefault((client, mode, concurrency), []).append(run)

    def median(self, client: str, mode: str, concurrency: int) -> Run | None:
        runs = self.runs.get((client, mode, concurrency))
        if not runs:
            return None
        return Run(statistics.median(r.rps for r in runs), statistics.median(r.cpu_us for r in runs))


async def bench_clients(
    port: int, upstream_pid: int, window_s: float, rounds: int, say: Callable[[str], None]
) -> ClientResults:
    results = ClientResults()
    clients = candidate_clients(port)
    live: list[UpstreamClient] = []
    for client in clients:
        try:
            await client.start()
            for _ in range(20):
                await client.chat()
                await client.stream()
            live.append(client)
        except Exception as exc:
            results.failed[client.name] = f"{type(exc).__name__}: {exc}"[:200]
    try:
        for index in range(rounds):
            say(f"  clients, round {index + 1}/{rounds}")
            for client in live if index % 2 == 0 else reversed(live):
                for mode, concurrency in CLIENT_MODES:
                    call = client.chat if mode == "chat" else client.stream
                    expect = len(CHAT_REPLY) if mode == "chat" else STREAM_EVENTS
                    run = await quietly(
                        lambda call=call, expect=expect, concurrency=concurrency: drive(
                            call, expect, concurrency, window_s
                        ),
                        lambda: [upstream_pid],
                        results.noise,
                    )
                    results.add(client.name, mode, concurrency, run)
    finally:
        for client in live:
            with contextlib.suppress(Exception):
                await client.close()
    return results


def client_table(results: ClientResults) -> list[str]:
    head = (
        f"{'client':<24}"
        + "".join(f"{f'{mode} c={c}':>22}" for mode, c in CLIENT_MODES)
        + "\n"
        + f"{'':<24}"
        + "".join(f"{'µs/req   req/s':>22}" for _ in CLIENT_MODES)
    )
    lines = [head, "-" * (24 + 22 * len(CLIENT_MODES))]
    names = dict.fromkeys(name for name, _, _ in results.runs)
    for name in names:
        cells = []
        for mode, concurrency in CLIENT_MODES:
            run = results.median(name, mode, concurrency)
            cells.append(f"{run.cpu_us:>12.0f}{run.rps:>10.0f}" if run else f"{'-':>22}")
        lines.append(f"{name:<24}" + "".join(cells))
    for name, why in results.failed.items():
        lines.append(f"{name:<24}failed: {why}")
    return lines


def client_conclusion(results: ClientResults) -> str:
    """A candidate replaces aiohttp only if it costs less CPU at c=32 and is no slower at c=1."""
    names = [n for n in dict.fromkeys(n for n, _, _ in results.runs) if not n.startswith("raw")]

    def run(name: str, mode: str, concurrency: int) -> Run:
        found = results.median(name, mode, concurrency)
        return found if found is not None else Run(0.0, float("inf"))

    def cost(name: str) -> float:
        return run(name, "chat", 32).cpu_us + run(name, "stream", 32).cpu_us

    if "aiohttp" not in names:
        return "clients: aiohttp did not run"
    parts = []
    winners = []
    for name in sorted(names, key=cost):
        if name == "aiohttp":
            continue
        cpu = cost(name) / cost("aiohttp")
        chat1 = run(name, "chat", 1).rps / run("aiohttp", "chat", 1).rps
        stream1 = run(name, "stream", 1).rps / run("aiohttp", "stream", 1).rps
        parts.append(f"{name}: CPU at c=32 {cpu:.2f}x, c=1 req/s chat {chat1:.2f}x stream {stream1:.2f}x")
        if cpu < 0.9 and chat1 >= 1.0 and stream1 >= 1.0:
            winners.append(name)
    choice = winners[0] if winners else "aiohttp stays (no candidate is both cheaper and no slower)"
    return "clients vs aiohttp: " + "; ".join(parts) + f". Choice: {choice}"


# --- HTTP servers ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerSpec:
    name: str
    command: Callable[[int], list[str]]


def _uvicorn(app: str) -> Callable[[int], list[str]]:
    def command(port: int) -> list[str]:
        return [
            sys.executable, "-m", "uvicorn", app, "--app-dir", str(HERE), "--host", HOST, "--port", str(port),
            "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip

    return command


def _granian(app: str) -> Callable[[int], list[str]]:
    def command(port: int) -> list[str]:
        granian = Path(sys.executable).with_name("granian")
        return [
            str(granian), "--interface", "asgi", "--host", HOST, "--port", str(port), "--workers", "1",
            "--runtime-threads", "1", "--runtime-mode", "st", "--loop", "uvloop", "--http", "1", "--no-ws",
            "--log-level", "warning", "--no-access-log", "--working-dir", str(HERE), app,
        ]  # fmt: skip

    return command


def server_specs() -> list[ServerSpec]:
    specs = [
        ServerSpec("uvicorn+uvloop+httptools", _uvicorn("asgi_apps:raw_app")),
        ServerSpec("uvicorn … + Starlette", _uvicorn("asgi_apps:starlette_app")),
    ]
    if installed("granian"):
        specs += [
            ServerSpec("granian (asgi, uvloop)", _granian("asgi_apps:raw_app")),
            ServerSpec("granian … + Starlette", _granian("asgi_apps:starlette_app")),
        ]
    return specs


@dataclass
class ServerRun:
    rps: float
    p50: float
    p99: float
    p50_c1: float
    cpu_us: float
    errors: int


async def bench_server(port: int, pgid: int, window_s: float) -> ServerRun:
    target = Target.post_json("server", HOST, port, "/v1/chat/completions", CHAT_REQUEST)
    client = Client(target)
    try:
        await client.warm(32)
        await closed_loop(client, 500, 32)
        cpu = group_cpu_seconds(pgid)
        many = await _timed_closed_loop(client, 32, window_s)
        cpu_us = (group_cpu_seconds(pgid) - cpu) / max(1, many.count) * 1e6
        one = await _timed_closed_loop(client, 1, window_s / 2)
    finally:
        client.close()
    return ServerRun(
        many.achieved_rps,
        percentile(many.latency, 50),
        percentile(many.latency, 99),
        percentile(one.latency, 50),
        cpu_us,
        many.errors + one.errors,
    )


async def _timed_closed_loop(client: Client, concurrency: int, seconds: float) -> Samples:
    loop = asyncio.get_running_loop()
    samples = Samples()
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            future: asyncio.Future[Result] = loop.create_future()
            client.submit(time.perf_counter(), future.set_result)
            samples.add(await future)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    samples.elapsed_s = time.perf_counter() - started
    return samples


async def bench_servers(
    servers: Sequence[tuple[ServerSpec, Child, int]],
    window_s: float,
    rounds: int,
    say: Callable[[str], None],
    noise: Noise,
) -> dict[str, list[ServerRun]]:
    runs: dict[str, list[ServerRun]] = {spec.name: [] for spec, _, _ in servers}
    for index in range(rounds):
        say(f"  servers, round {index + 1}/{rounds}")
        for spec, child, port in servers if index % 2 == 0 else list(reversed(servers)):
            run = await quietly(
                lambda port=port, child=child: bench_server(port, child.pid, window_s),
                lambda child=child: group_pids(child.pid),
                noise,
            )
            runs[spec.name].append(run)
    return runs


def server_table(runs: dict[str, list[ServerRun]]) -> list[str]:
    head = (
        f"{'server':<28}{'req/s c=32':>11}{'p50':>8}{'p99':>8}{'p50 c=1':>9}{'cpu µs/req':>12}{'errors':>8}"
    )
    lines = [head, "-" * len(head)]
    for name, results in runs.items():
        med = statistics.median
        lines.append(
            f"{name:<28}{med(r.rps for r in results):>11.0f}{med(r.p50 for r in results):>8.2f}"
            f"{med(r.p99 for r in results):>8.2f}{med(r.p50_c1 for r in results):>9.3f}"
            f"{med(r.cpu_us for r in results):>12.0f}{sum(r.errors for r in results):>8}"
        )
    return lines


def server_conclusion(runs: dict[str, list[ServerRun]]) -> str:
    def med(name: str, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in runs[name])

    uvicorn, granian = "uvicorn+uvloop+httptools", "granian (asgi, uvloop)"
    if granian not in runs:
        return "servers: granian is not installed; uvicorn+uvloop+httptools stays"
    rps = med(granian, "rps") / med(uvicorn, "rps")
    cpu = med(granian, "cpu_us") / med(uvicorn, "cpu_us")
    c1 = med(granian, "p50_c1") / med(uvicorn, "p50_c1")
    wins = rps > 1.1 and cpu <= 1.0 and c1 <= 1.0
    verdict = "granian" if wins else "uvicorn+uvloop+httptools stays"
    return (
        f"servers: granian vs uvicorn on the raw ASGI app: req/s {rps:.2f}x, CPU µs/req {cpu:.2f}x, "
        f"p50 at c=1 {c1:.2f}x; choice: {verdict} (switching needs >10% more req/s with no more CPU "
        "per request and no slower single request)"
    )


# --- JSON ------------------------------------------------------------------------------------------


def _json_codecs() -> dict[str, tuple[Callable[[bytes], Any], Callable[[Any], bytes]]]:
    codecs: dict[str, tuple[Callable[[bytes], Any], Callable[[Any], bytes]]] = {
        "orjson": (orjson.loads, orjson.dumps),
        "json (stdlib)": (json.loads, lambda o: json.dumps(o, separators=(",", ":")).encode()),
    }
    if installed("msgspec"):
        import msgspec

        decoder, encoder = msgspec.json.Decoder(), msgspec.json.Encoder()
        codecs["msgspec"] = (decoder.decode, encoder.encode)
    return codecs


JSON_BODIES = (
    ("chat request", CHAT_REQUEST, CHAT_REQUEST_OBJ),
    ("chat reply", CHAT_REPLY, CHAT_REPLY_OBJ),
    ("stream chunk", STREAM_CHUNK, STREAM_CHUNK_OBJ),
)


def _per_call_us(fn: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(fn, repeat=3, number=number)) / number * 1e6


def bench_json(quick: bool) -> dict[str, dict[str, float]]:
    """Best time per call over several interleaved passes, so that a burst of load from other
    processes hits every library alike and the minimum filters it out."""
    calls: list[tuple[str, str, Callable[[], object]]] = []
    for name, (loads, dumps) in _json_codecs().items():
        for label, raw, obj in JSON_BODIES:
            calls.append((name, f"{label} loads", lambda loads=loads, raw=raw: loads(raw)))
            calls.append((name, f"{label} dumps", lambda dumps=dumps, obj=obj: dumps(obj)))
    numbers = {(name, column): max(1, timeit.Timer(fn).autorange()[0] // 8) for name, column, fn in calls}
    out: dict[str, dict[str, float]] = {}
    for _ in range(3 if quick else 10):
        for name, column, fn in calls:
            took = _per_call_us(fn, numbers[(name, column)])
            row = out.setdefault(name, {})
            row[column] = min(row.get(column, took), took)
    return out


def json_table(results: dict[str, dict[str, float]]) -> list[str]:
    columns = list(next(iter(results.values())))
    sizes = {label: len(raw) for label, raw, _ in JSON_BODIES}
    head = f"{'library':<16}" + "".join(f"{c:>20}" for c in columns)
    note = f"{'(µs per call)':<16}" + "".join(
        f"{str(sizes[c.rsplit(' ', 1)[0]]) + ' B':>20}" for c in columns
    )
    lines = [head, note, "-" * len(head)]
    for name, row in results.items():
        lines.append(f"{name:<16}" + "".join(f"{row[c]:>20.2f}" for c in columns))
    return lines


def json_conclusion(results: dict[str, dict[str, float]]) -> str:
    totals = {name: sum(row.values()) for name, row in results.items()}
    orjson_total = totals["orjson"]
    parts = [f"stdlib json takes {totals['json (stdlib)'] / orjson_total:.1f}x orjson's time"]
    choice = "orjson"
    if "msgspec" in totals:
        ratio = totals["msgspec"] / orjson_total
        parts.append(f"msgspec (untyped decode/encode) {ratio:.2f}x")
        if ratio < 0.9:
            choice = "msgspec (more than 10% faster than orjson here)"
    if choice == "orjson":
        choice += " (nothing measured is more than 10% faster in total)"
    return f"json: over these bodies, {'; '.join(parts)}; choice: {choice}"


# --- main ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Plan:
    quick: bool
    rounds: int
    client_window_s: float
    server_window_s: float
    parts: frozenset[str]


def start_upstream(tmp: Path, cpus: CpuPlan) -> tuple[Child, int]:
    port = free_port(HOST)
    command = [sys.executable, str(HERE / "fastupstream.py"), str(port)]
    child = spawn("fast upstream", command, tmp / "upstream.log", cpus.rig)
    wait_http_ok(f"http://{HOST}:{port}/health", child)
    return child, port


def start_servers(tmp: Path, cpus: CpuPlan) -> list[tuple[ServerSpec, Child, int]]:
    started: list[tuple[ServerSpec, Child, int]] = []
    for spec in server_specs():
        port = free_port(HOST)
        child = spawn(spec.name, spec.command(port), tmp / f"server-{len(started)}.log", cpus.server)
        started.append((spec, child, port))
        wait_http_ok(f"http://{HOST}:{port}/health", child)
    return started


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run(plan: Plan) -> int:
    cpus = plan_cpus()
    print(f"machine: {machine_line()}")
    print(
        f"pinning: {cpus.describe()} (for clients: the client under test on the first, upstream on the other)"
    )
    print(f"rounds: {plan.rounds}, values are medians over rounds{'; --quick' if plan.quick else ''}")
    children: list[Child] = []
    own = os.sched_getaffinity(0)
    with tempfile.TemporaryDirectory(prefix="interlock-components-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            if "clients" in plan.parts:
                upstream, port = start_upstream(tmp, cpus)
                children.append(upstream)
                if cpus.server is not None:
                    os.sched_setaffinity(0, cpus.server)
                _say("upstream HTTP clients …")
                results = uvloop.run(
                    bench_clients(port, upstream.pid, plan.client_window_s, plan.rounds, _say)
                )
                os.sched_setaffinity(0, own)
                print(
                    "\nupstream HTTP clients (client CPU µs per request incl. this process's driver; req/s):"
                )
                print("\n".join(client_table(results)))
                print(results.noise.describe())
                print(client_conclusion(results))
            if "servers" in plan.parts:
                servers = start_servers(tmp, cpus)
                children.extend(child for _, child, _ in servers)
                if cpus.rig is not None:
                    os.sched_setaffinity(0, cpus.rig)
                _say("HTTP servers …")
                server_noise = Noise()
                runs = uvloop.run(
                    bench_servers(servers, plan.server_window_s, plan.rounds, _say, server_noise)
                )
                os.sched_setaffinity(0, own)
                print("\nHTTP servers, one worker (closed loop; latency ms; server CPU from /proc):")
                print("\n".join(server_table(runs)))
                print(server_noise.describe())
                print(server_conclusion(runs))
            if "json" in plan.parts:
                if cpus.server is not None:
                    os.sched_setaffinity(0, cpus.server)
                _say("JSON …")
                results_json = bench_json(plan.quick)
                os.sched_setaffinity(0, own)
                print("\nJSON (µs per call, best of repeats):")
                print("\n".join(json_table(results_json)))
                print(json_conclusion(results_json))
        finally:
            for child in reversed(children):
                child.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short windows, one round")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--only", default="clients,servers,json", help="comma-separated parts to run")
    args = parser.parse_args(argv)
    parts = frozenset(p.strip() for p in args.only.split(",") if p.strip())
    unknown = parts - {"clients", "servers", "json"}
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    rounds = 1 if args.quick else max(1, args.repeat)
    plan = Plan(args.quick, rounds, 0.5 if args.quick else 2.0, 1.0 if args.quick else 3.0, parts)
    with sigterm_as_interrupt():
        try:
            return run(plan)
        except KeyboardInterrupt:
            _say("interrupted; stopped every server started")
            return 130


if __name__ == "__main__":
    sys.exit(main())
