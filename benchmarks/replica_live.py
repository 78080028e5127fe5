"""The live part of the replica-routing benchmark: the same balancers against real simulator processes.

Starts a few ``interlock.sim`` processes with a small prefix cache (room for a few tenant contexts
each) and a prefill cost per uncached token, then sends one fixed open-loop sequence of
shared-context chat requests through each balancer in turn: the balancer picks a simulator in this
process (with a ``LoadTracker`` on the real clock, fed like the gateway feeds it), the request is
POSTed straight to that simulator, streaming with ``include_usage`` so that the time to first token
and the cached prompt tokens come back. Prefix caches are emptied between balancers. Every simulator
is stopped at the end, whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from bisect import bisect
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import aiohttp
import orjson

from interlock.routing.balancers import (
    Balancer,
    LeastOutstanding,
    PrefixAffinity,
    RoundRobin,
    RouteHints,
)
from interlock.routing.load import LoadTracker
from interlock.routing.snapshot import Deployment
from interlock.sim import SimConfig, SimProcess

__all__ = ["LIVE_BALANCERS", "run_live"]

LIVE_BALANCERS = ("round-robin", "least-outst.", "prefix")
REPLICAS = 4
TENANTS = 24
ZIPF_S = 1.1
CONTEXT_WORDS = (1_200, 1_800)
QUESTION_WORDS = (20, 60)
MAX_TOKENS = 32
RATE_RPS = 30.0

SIM = SimConfig(
    ttft_ms=10.0,
    prefill_ms_per_token=0.3,
    tpot_ms=4.0,
    batch_penalty=0.02,
    max_concurrency=8,
    prefix_block_size=16,
    prefix_cache_blocks=320,  # about three tenant contexts
    output_tokens_min=16,
    output_tokens_max=MAX_TOKENS,
    default_max_tokens=MAX_TOKENS,
)

_WORDS = tuple(c + v for c in "bdfgklmnprstvz" for v in "aeiou") + tuple(
    c + v + d + w for c in "bdfklmnprst" for v in "aeiou" for d in "lmnrst" for w in "aeo"
)


@dataclass(frozen=True, slots=True)
class _Request:
    at: float
    tenant: int
    body: bytes
    hints_body: dict[str, Any]


@dataclass(slots=True)
class _Outcome:
    ttft_s: float = math.nan
    prompt_tokens: int = 0
    cached_tokens: int = 0
    ok: bool = False


def _requests(duration_s: float, seed: int = 11) -> list[_Request]:
    rng = random.Random(seed)
    contexts = [
        " ".join(random.Random(f"live-{t}").choices(_WORDS, k=random.Random(t).randint(*CONTEXT_WORDS)))
        for t in range(TENANTS)
    ]
    cumulative = list(accumulate(1 / (rank + 1) ** ZIPF_S for rank in range(TENANTS)))
    out: list[_Request] = []
    clock = 0.0
    while True:
        clock += rng.expovariate(RATE_RPS)
        if clock >= duration_s:
            return out
        tenant = min(bisect(cumulative, rng.random() * cumulative[-1]), TENANTS - 1)
        question = " ".join(rng.choices(_WORDS, k=rng.randint(*QUESTION_WORDS)))
        body: dict[str, Any] = {
            "model": "sim-small",
            "messages": [
                {"role": "system", "content": contexts[tenant]},
                {"role": "user", "content": question},
            ],
            "max_tokens": MAX_TOKENS,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        out.append(_Request(clock, tenant, orjson.dumps(body), body))


async def _send(
    session: aiohttp.ClientSession, url: str, request: _Request, load: LoadTracker, deployment: str
) -> _Outcome:
    """One streamed request, with the load bookkeeping the gateway does for an attempt: ``start`` when it
    is sent; at the end of the stream ``finish`` and then the time its first token took (or a failure)."""
    outcome = _Outcome()
    load.start(deployment)
    started = time.perf_counter()
    try:
        async with session.post(
            url, data=request.body, headers={"content-type": "application/json"}
        ) as response:
            if response.status == 200:
                async for line in response.content:
                    if not line.startswith(b"data: {"):
                        continue
                    chunk = orjson.loads(line[6:])
                    choices = chunk.get("choices") or []
                    if math.isnan(outcome.ttft_s) and any(
                        (c.get("delta") or {}).get("content") for c in choices
                    ):
                        outcome.ttft_s = time.perf_counter() - started
                    usage = chunk.get("usage")
                    if usage:
                        outcome.prompt_tokens = usage["prompt_tokens"]
                        outcome.cached_tokens = usage["prompt_tokens_details"]["cached_tokens"]
                outcome.ok = not math.isnan(outcome.ttft_s) and outcome.prompt_tokens > 0
            else:
                await response.read()
    except (aiohttp.ClientError, TimeoutError):
        pass
    load.finish(deployment)
    if outcome.ok:
        load.observe_ttft(deployment, outcome.ttft_s)
    else:
        load.observe_failure(deployment)
    return outcome


def _balancer(name: str, load: LoadTracker) -> Balancer:
    if name == "round-robin":
        return RoundRobin()
    if name == "least-outst.":
        return LeastOutstanding(load, random.Random(3))
    return PrefixAffinity(load)


async def _drive(
    name: str, requests: Sequence[_Request], sims: Sequence[SimProcess]
) -> tuple[list[_Outcome], float]:
    load = LoadTracker()
    balancer = _balancer(name, load)
    candidates = tuple(
        Deployment(id=f"sim-{i}", model_name="sim-small", provider="sim", upstream_model="sim-small")
        for i in range(len(sims))
    )
    urls = {d.id: sim.base_url + "/chat/completions" for d, sim in zip(candidates, sims, strict=True)}
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=timeout, trust_env=False
    ) as session:
        tasks: list[asyncio.Task[_Outcome]] = []
        lag = 0.0
        start = time.perf_counter()
        for request in requests:
            delay = start + request.at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                lag = max(lag, -delay)
            hints = RouteHints(session=f"tenant-{request.tenant}", body=request.hints_body)
            chosen = balancer.choose(candidates, hints)
            tasks.append(asyncio.create_task(_send(session, urls[chosen.id], request, load, chosen.id)))
        outcomes = list(await asyncio.gather(*tasks))
    return outcomes, lag


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(v for v in values if not math.isnan(v))
    if not ordered:
        return math.nan
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def run_live(quick: bool = False) -> list[str]:
    """Run the live comparison and return the report lines."""
    duration = 2.0 if quick else 6.0
    requests = _requests(duration)
    lines = [
        f"== live: {REPLICAS} simulator processes (TTFT {SIM.ttft_ms:g} ms + "
        f"{SIM.prefill_ms_per_token:g} ms/uncached token, decode {SIM.tpot_ms:g} ms/token, "
        f"{SIM.max_concurrency} concurrent, prefix cache {SIM.prefix_cache_blocks} blocks of "
        f"{SIM.prefix_block_size} tokens ~ 3 contexts)",
        f"   {TENANTS} tenants (Zipf {ZIPF_S:g}) with {CONTEXT_WORDS[0]}-{CONTEXT_WORDS[1]}-token system "
        f"prompts, {len(requests)} streaming requests at {RATE_RPS:g}/s open loop over {duration:g} s, "
        "the same sequence per balancer, caches emptied in between",
        f"  {'':<14}{'hit rate':>9}{'TTFT p50':>11}{'TTFT p90':>11}{'TTFT p99':>11}{'errors':>8}",
    ]
    with contextlib.ExitStack() as stack:
        configs = [SIM.with_changes(name=f"live-{i}", seed=i) for i in range(REPLICAS)]
        sims = [SimProcess(config) for config in configs]
        for sim in sims:
            stack.callback(sim.stop)
        with ThreadPoolExecutor(max_workers=REPLICAS) as pool:
            list(pool.map(lambda sim: sim.start(), sims))
        for name in LIVE_BALANCERS:
            for sim in sims:
                sim.reset_prefix_cache()
            outcomes, lag = asyncio.run(_drive(name, requests, sims))
            good = [o for o in outcomes if o.ok]
            prompt = sum(o.prompt_tokens for o in good)
            hit = sum(o.cached_tokens for o in good) / prompt if prompt else math.nan
            ttfts = [o.ttft_s * 1000 for o in good]
            lines.append(
                f"  {name:<14}{hit:>9.0%}{_quantile(ttfts, 0.5):>8.0f} ms{_quantile(ttfts, 0.9):>8.0f} ms"
                f"{_quantile(ttfts, 0.99):>8.0f} ms{len(outcomes) - len(good):>8}"
                + (f"   (sender lag up to {lag * 1000:.0f} ms)" if lag > 0.05 else "")
            )
    return lines
