"""Claims: a budget holds across instances, governance on Redis is cheap, and one key cannot starve others.

Three parts, each printing its ``target:`` lines:

1. **Spend across instances.** Two gateway processes (``interlock up``) share one PostgreSQL store (a
   fresh database) and one Redis (a fresh key prefix), in front of one simulator. One key has a
   $1.00 daily budget. 64 concurrent clients (closed loop, half on each instance) send requests
   until every client has been refused twice. Then: the budget's settled spend (from the shared
   counters), the spend in the request log (from PostgreSQL), the number of answers that were not a
   success or a budget refusal (must be zero), and how much of the budget was used when the first
   refusal came (a refusal while the budget had room would come early).
2. **CPU per request.** Two single-worker gateways in front of a simulator that answers at once:
   one with no budget or limit, one where the key draws on a key budget, a global budget and a
   per-key rate limit (requests, tokens, concurrency), all on Redis. Alternating closed-loop rounds
   (8 in flight); CPU time of each gateway process per request; the ratio.
3. **Fairness**: ``fairness.py`` (one key sending 20x the traffic of nine others at saturation).

Targets (issue: governance): final spend <= $1.00 plus the reservations in flight at the end (none,
once every client stopped); zero unexpected answers; CPU with governance on Redis <= 1.5x without;
fairness as in ``fairness.py``.

Run: ``python benchmarks/budgets.py [--quick]``. Needs PostgreSQL and Redis (see DESIGN.md).
Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import asyncpg
import orjson
import uvloop

import fairness
from interlock.server.thread import free_port
from interlock.sim import SimConfig
from interlock.sim.runner import config_to_args
from loadgen import Client, Target, closed_loop
from procs import Child, cpu_seconds, machine_line, plan_cpus, sigterm_as_interrupt, spawn, wait_http_ok

HOST = "127.0.0.1"
PG_USERS = ("postgres", "root")
REDIS_URL = "redis://127.0.0.1:6379/0"
BUDGET_USD = 1.0
CLIENTS = 64
CPU_RATIO_LIMIT = 1.5
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _json(url: str, key: str, body: object | None = None) -> dict[str, object]:
    data = orjson.dumps(body) if body is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    with _OPENER.open(request, timeout=30) as response:
        found: dict[str, object] = orjson.loads(response.read())
        return found


async def _admin_connection() -> tuple[asyncpg.Connection, str]:
    problems = []
    for user in PG_USERS:
        try:
            return await asyncpg.connect(
                host=HOST, port=5432, user=user, database="postgres", timeout=3
            ), user
        except (OSError, asyncpg.PostgresError) as exc:
            problems.append(f"{user}: {exc}")
    raise RuntimeError("PostgreSQL is unreachable: " + "; ".join(problems))


async def create_database() -> tuple[str, str]:
    conn, user = await _admin_connection()
    name = f"interlock_bench_{secrets.token_hex(4)}"
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name, f"postgresql://{user}@{HOST}:5432/{name}"


async def drop_database(name: str) -> None:
    conn, _ = await _admin_connection()
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def start_sim(tmp: Path, cpus: frozenset[int] | None, **timing: float) -> tuple[Child, int]:
    port = free_port(HOST)
    config = SimConfig(host=HOST, port=port, max_concurrency=4096, **timing)  # type: ignore[arg-type]
    sim = spawn(
        "simulator",
        [sys.executable, "-m", "interlock.sim", *config_to_args(config)],
        tmp / f"sim-{port}.log",
        cpus,
    )
    wait_http_ok(f"http://{HOST}:{port}/health", sim)
    return sim, port


def start_gateway(tmp: Path, name: str, config: str, cpus: frozenset[int] | None) -> tuple[Child, int]:
    path = tmp / f"{name}.yaml"
    path.write_text(config, encoding="utf-8")
    port = free_port(HOST)
    script = Path(sys.executable).with_name("interlock")
    command = [
        str(script),
        "up",
        "--config",
        str(path),
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    gateway = spawn(name, command, tmp / f"{name}.log", cpus)
    wait_http_ok(f"http://{HOST}:{port}/healthz", gateway)
    return gateway, port


def gateway_config(master: str, store: str, sim_port: int, extra: str) -> str:
    return f"""
master_key: {master}
store: {store}
logging: {{request_log: true}}
providers:
  sim: {{kind: openai, base_url: http://{HOST}:{sim_port}/v1}}
models:
  chat:
    deployments:
      - {{provider: sim, model: sim-small, price: {{input: 100.0, output: 300.0}}}}
{extra}
"""


def chat_body(max_tokens: int) -> bytes:
    messages = [{"role": "user", "content": "Summarise the rules of the railway junction in one line."}]
    return orjson.dumps({"model": "chat", "messages": messages, "max_tokens": max_tokens})


# --- part 1: spend across instances ---------------------------------------------------------------


async def hammer(ports: Sequence[int], key: str) -> tuple[int, int, int, list[str]]:
    """CLIENTS workers, alternating instances, each until refused twice: (ok, refused, other, samples)."""
    ok = refused = other = 0
    samples: list[str] = []
    body = chat_body(48)
    targets = [
        Target.post_json(
            f"gw{i}", HOST, port, "/v1/chat/completions", body, headers=[("Authorization", f"Bearer {key}")]
        )
        for i, port in enumerate(ports)
    ]
    clients = [Client(targets[i % len(targets)]) for i in range(CLIENTS)]

    async def worker(client: Client) -> None:
        nonlocal ok, refused, other
        refusals = 0
        while refusals < 2:
            result = await one(client)
            if result.status == 200:
                ok += 1
            elif result.status == 429:
                refused += 1
                refusals += 1
            else:
                other += 1
                if len(samples) < 5:
                    samples.append(str(result.status))
                refusals += 1  # a broken path must not loop for ever

    try:
        await asyncio.gather(*(worker(c) for c in clients))
    finally:
        for client in clients:
            client.close()
    return ok, refused, other, samples


async def one(client: Client) -> object:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[object] = loop.create_future()
    client.submit(loop.time(), lambda result: done.set_result(result) if not done.done() else None)
    return await done


def spend_part(tmp: Path, quick: bool) -> list[tuple[str, float, str, bool]]:
    cpus = plan_cpus()
    master = "sk-bench-" + secrets.token_hex(16)
    prefix = f"interlock-bench:{secrets.token_hex(4)}:"
    db_name, store = asyncio.run(create_database())
    children: list[Child] = []
    try:
        sim, sim_port = start_sim(tmp, cpus.rig, ttft_ms=5, tpot_ms=1)
        children.append(sim)
        extra = (
            f"redis: {{url: '{REDIS_URL}', prefix: '{prefix}'}}\n"
            f"budgets: {{rules: [{{name: bench, scope: key, period: day, limit_usd: {BUDGET_USD}}}]}}"
        )
        text = gateway_config(master, store, sim_port, extra)
        first, port_a = start_gateway(tmp, "gateway-a", text, cpus.server)
        children.append(first)
        second, port_b = start_gateway(tmp, "gateway-b", text, cpus.server)
        children.append(second)
        created = _json(f"http://{HOST}:{port_a}/admin/keys", master, {"name": "bench"})
        key, key_id = str(created["key"]), str(created["id"])
        ok, refused, other, samples = uvloop.run(hammer([port_a, port_b], key))
        usage = _json(f"http://{HOST}:{port_b}/admin/budgets?key_id={key_id}", master)["usage"]
        assert isinstance(usage, list) and usage
        line = usage[0]
        logged = asyncio.run(logged_spend(store, key_id, ok))
    finally:
        for child in reversed(children):
            child.stop()
        asyncio.run(drop_database(db_name))
    settled, reserved = float(line["settled_usd"]), float(line["reserved_usd"])
    print(f"spend across two instances (PostgreSQL + Redis), {CLIENTS} clients on one key,")
    print(f"a ${BUDGET_USD:.2f} budget:")
    print(f"  answered {ok}, refused by the budget {refused}, other answers {other} {samples or ''}")
    print(f"  budget settled ${settled:.6f}, reserved ${reserved:.6f}; request log ${logged:.6f}")
    return [
        (
            "final spend (settled + in flight) <= budget",
            settled + reserved,
            f"<= {BUDGET_USD:.2f}",
            settled + reserved <= BUDGET_USD,
        ),
        (
            "request log spend = budget spend",
            abs(logged - settled),
            "<= 0.0001",
            abs(logged - settled) <= 1e-4,
        ),
        ("answers neither success nor budget 429", float(other), "== 0", other == 0),
    ]


async def logged_spend(store: str, key_id: str, answered: int) -> float:
    """The key's spend in the request log, once its ``answered`` successes are all written (the log
    is written in the background, in batches)."""
    conn = await asyncpg.connect(store)
    try:
        query = (
            "SELECT count(*) FILTER (WHERE status = 200), coalesce(sum(cost), 0)"
            " FROM request_log WHERE key_id = $1"
        )
        for _ in range(100):
            count, value = await conn.fetchrow(query, key_id)
            if count >= answered:
                break
            await asyncio.sleep(0.1)
        return float(value)
    finally:
        await conn.close()


# --- part 2: CPU per request ------------------------------------------------------------------------


def cpu_part(tmp: Path, quick: bool) -> list[tuple[str, float, str, bool]]:
    cpus = plan_cpus()
    master = "sk-bench-" + secrets.token_hex(16)
    prefix = f"interlock-bench:{secrets.token_hex(4)}:"
    children: list[Child] = []
    try:
        sim, sim_port = start_sim(tmp, cpus.rig, ttft_ms=0, tpot_ms=0, prefill_ms_per_token=0)
        children.append(sim)
        plain, plain_port = start_gateway(
            tmp, "plain", gateway_config(master, f"sqlite:///{tmp}/plain.db", sim_port, ""), cpus.server
        )
        children.append(plain)
        governed_extra = (
            f"redis: {{url: '{REDIS_URL}', prefix: '{prefix}'}}\n"
            "budgets: {rules: [{name: per-key, scope: key, period: day, limit_usd: 1000000},"
            " {name: everyone, scope: global, period: month, limit_usd: 1000000}]}\n"
            "limits: {rules: [{scope: key, requests_per_min: 100000000, tokens_per_min: 100000000000,"
            " concurrent: 10000}]}"
        )
        governed, governed_port = start_gateway(
            tmp,
            "governed",
            gateway_config(master, f"sqlite:///{tmp}/gov.db", sim_port, governed_extra),
            cpus.server,
        )
        children.append(governed)
        keys = {
            port: str(_json(f"http://{HOST}:{port}/admin/keys", master, {"name": "cpu"})["key"])
            for port in (plain_port, governed_port)
        }
        sides = {"plain": (plain, plain_port), "governed": (governed, governed_port)}
        per_request = uvloop.run(cpu_rounds(sides, keys, 1000 if quick else 4000, 3 if quick else 5))
    finally:
        for child in reversed(children):
            child.stop()
    plain_us, governed_us = (
        statistics.median(per_request["plain"]),
        statistics.median(per_request["governed"]),
    )
    ratio = governed_us / plain_us
    print("CPU per request (non-streaming chat, closed loop, 8 in flight; median of rounds):")
    for label, name, value in (
        ("no budgets or limits", "plain", plain_us),
        ("key + global budgets, key rate limits, on Redis", "governed", governed_us),
    ):
        print(f"  {label:<50}{value:7.1f} µs   rounds {[round(x) for x in per_request[name]]}")
    return [
        ("CPU/request governed on Redis / none", ratio, f"<= {CPU_RATIO_LIMIT}", ratio <= CPU_RATIO_LIMIT)
    ]


async def cpu_rounds(
    sides: dict[str, tuple[Child, int]], keys: dict[int, str], count: int, rounds: int
) -> dict[str, list[float]]:
    clients = {
        name: Client(
            Target.post_json(
                name,
                HOST,
                port,
                "/v1/chat/completions",
                chat_body(32),
                headers=[("Authorization", f"Bearer {keys[port]}")],
            )
        )
        for name, (_, port) in sides.items()
    }
    found: dict[str, list[float]] = {name: [] for name in sides}
    try:
        for client in clients.values():
            await closed_loop(client, 300, 8)  # warm up
        for turn in range(rounds):
            order = list(sides) if turn % 2 == 0 else list(reversed(sides))
            for name in order:
                child = sides[name][0]
                before = cpu_seconds(child.pid)
                samples = await closed_loop(clients[name], count, 8)
                await asyncio.sleep(0.3)  # background settlements and log writes of this round
                found[name].append((cpu_seconds(child.pid) - before) / samples.count * 1e6)
                if samples.errors:
                    raise RuntimeError(f"{name}: {samples.errors} errors")
    finally:
        for client in clients.values():
            client.close()
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    parser.add_argument("--skip-fairness", action="store_true")
    args = parser.parse_args(argv)
    print(machine_line())
    lines: list[tuple[str, float, str, bool]] = []
    with sigterm_as_interrupt(), tempfile.TemporaryDirectory(prefix="interlock-budgets-") as tmp_name:
        tmp = Path(tmp_name)
        lines += spend_part(tmp, args.quick)
        lines += cpu_part(tmp, args.quick)
    failed = False
    for label, value, limit, ok in lines:
        print(f"target: {label:<46}{value:>10.4f}  {limit:<8}{'ok' if ok else 'MISSED'}")
        failed |= not ok
    if not args.skip_fairness:
        failed |= fairness.main(["--quick"] if args.quick else []) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
