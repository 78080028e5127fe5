"""A discrete-event model of LLM engine replicas, driven by the gateway's own balancers.

Used by ``benchmarks/replica_routing.py``. Everything runs on a virtual clock with one event heap; a
run costs a few events per request, whatever the simulated duration.

**Replica** (one engine, continuous batching with chunked prefill, in the style of vLLM/Sarathi):

* at most ``max_batch`` sequences run at once (prefilling or decoding); the others wait FIFO;
* a request is admitted only when the KV cache can hold its prompt and a reservation for its
  output; the head of the queue blocks the rest (no preemption);
* the KV cache is ``kv_blocks`` blocks of ``block_tokens`` tokens, keyed by chained hashes of the
  prompt's token blocks (a key names the whole prefix up to its block); blocks held by running
  sequences are pinned, the others stay cached and are evicted least recently used first; the
  cached part of a prompt is its leading blocks that are present *and already computed*;
* the engine runs in steps: each step decodes one token of every decoding sequence and, while
  prompts wait for prefill, also prefills a chunk of ``chunk_tokens`` of the oldest one. A step takes
  ``decode_ms * (1 + batch_penalty * (batch - 1))`` (when something decodes) plus
  ``prefill_ms_per_token * chunk_tokens`` (when something prefills). Prefill is thus serial per
  replica, and a replica busy prefilling slows its decoders down (the TPOT cost of prefill);
* the first token comes at the end of a request's prefill (TTFT); the rest take one step each.

Steps are not simulated one by one: between two events the batch and the prefill state are fixed, so
decode and prefill progress at constant rates, and the model integrates them (a fluid version of the
step loop, exact up to the rounding of a step). Simplifications: no preemption or swapping; the output
KV is reserved at admission; several prompts are never prefilled within one step; blocks of a prompt
that is still being prefilled are not yet shared with later requests.

**Routing** uses the gateway's classes: the balancer picks a :class:`Deployment` for each request at
its arrival from the prompt text and the session id, and a shared :class:`LoadTracker` on the virtual
clock hears what the gateway tells it (``routing/attempt.py``): ``start`` at dispatch, and when the
request ends ``finish`` and then ``observe_ttft`` with the time its first token took.
"""

from __future__ import annotations

import heapq
import math
import random
from bisect import bisect
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import accumulate

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

__all__ = [
    "BALANCERS",
    "PREFIX_ABS32",
    "EngineModel",
    "RunStats",
    "Slo",
    "Workload",
    "WorkloadSpec",
    "make_balancer",
    "simulate",
]

#: The balancers compared, in table order (labels of :func:`make_balancer`).
BALANCERS: tuple[str, ...] = ("round-robin", "random", "least-outst.", "p2c-ewma", "session", "prefix")
#: Prefix affinity with the load guard's absolute threshold at 32 in-flight requests (SGLang's default)
#: instead of the gateway's 8: not a default, shown for comparison.
PREFIX_ABS32 = "prefix abs32"

_EPS = 1e-7


@dataclass(frozen=True, slots=True)
class EngineModel:
    """The parameters of every simulated replica (and how many there are)."""

    replicas: int = 8
    max_batch: int = 32
    block_tokens: int = 64
    kv_blocks: int = 1024
    prefill_ms_per_token: float = 0.15
    chunk_tokens: int = 512
    decode_ms: float = 10.0
    batch_penalty: float = 0.03

    def decode_step_s(self, batch: int) -> float:
        """One decode step with ``batch`` sequences (no prefill in it)."""
        return self.decode_ms * (1 + self.batch_penalty * (batch - 1)) / 1000 if batch else 0.0

    def capacity(self, prompt_tokens: float, output_tokens: float) -> tuple[float, str]:
        """Estimated fleet throughput (requests/s) when every prompt token is prefilled (no prefix
        reuse), and how it was derived.

        At saturation a replica is never idle: each request needs ``prompt / chunk`` steps that carry a
        prefill chunk and ``output / decoding`` decode steps, where ``decoding`` is the batch the KV
        cache can hold (whole prompt + output per sequence) less the one sequence being prefilled; the
        steps overlap, so a request costs ``prompt * prefill cost + max(both step counts) * decode
        step``.
        """
        kv_tokens = self.kv_blocks * self.block_tokens
        batch = max(1, min(self.max_batch, int(kv_tokens // (prompt_tokens + output_tokens))))
        decoding = max(1, batch - 1)
        prefill_steps = prompt_tokens / self.chunk_tokens
        steps = max(prefill_steps, output_tokens / decoding)
        seconds = prompt_tokens * self.prefill_ms_per_token / 1000 + steps * self.decode_step_s(decoding)
        rate = self.replicas / seconds
        step_ms = self.decode_step_s(decoding) * 1000
        how = (
            f"{self.replicas} replicas / {seconds:.3f} s per request = {prompt_tokens:,.0f} prompt tokens x "
            f"{self.prefill_ms_per_token:g} ms + {steps:.1f} steps x {step_ms:.1f} ms "
            f"(KV holds {batch} sequences of {prompt_tokens + output_tokens:,.0f} tokens)"
        )
        return rate, how

    def describe(self) -> str:
        kv = self.kv_blocks * self.block_tokens
        return (
            f"{self.replicas} replicas; each: batch <= {self.max_batch}, KV cache {kv:,} tokens "
            f"({self.kv_blocks} blocks of {self.block_tokens}, LRU, pinned while in use), prefill "
            f"{self.prefill_ms_per_token:g} ms/uncached token in {self.chunk_tokens}-token chunks per step, "
            f"decode step {self.decode_ms:g} ms x (1 + {self.batch_penalty:g} x (batch-1))"
        )


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    """A multi-tenant chat workload: each tenant has a long context; requests add a short question.

    ``shared`` False is the control: every prompt starts with a unique block, so nothing is shared,
    with the same tenants, popularity and lengths otherwise.
    """

    name: str
    shared: bool
    tenants: int = 150
    zipf_s: float = 1.1
    context_tokens: tuple[int, int] = (5_000, 7_000)
    question_tokens: tuple[int, int] = (50, 200)
    output_tokens: tuple[int, int] = (50, 300)
    header_tokens: int = 64
    """Length of the control's unique first block (one KV block of the model)."""

    def mean_prompt_tokens(self) -> float:
        header = 0 if self.shared else self.header_tokens
        return sum(self.context_tokens) / 2 + sum(self.question_tokens) / 2 + header

    def mean_output_tokens(self) -> float:
        return sum(self.output_tokens) / 2

    def popularity(self) -> list[float]:
        """Share of requests of each tenant (Zipf over rank)."""
        weights = [1 / (rank + 1) ** self.zipf_s for rank in range(self.tenants)]
        total = sum(weights)
        return [w / total for w in weights]

    def describe(self) -> str:
        lo, hi = self.context_tokens
        qlo, qhi = self.question_tokens
        olo, ohi = self.output_tokens
        what = "shared tenant context" if self.shared else "unique prompt (no sharing)"
        return (
            f"{self.tenants} tenants, Zipf s={self.zipf_s:g}; prompt = {what} of {lo}-{hi} tokens + "
            f"question {qlo}-{qhi} tokens; output {olo}-{ohi} tokens; Poisson arrivals"
        )


@dataclass(frozen=True, slots=True)
class Slo:
    ttft_s: float = 2.0
    tpot_s: float = 0.050


# --- workload ------------------------------------------------------------------------------------

# Words of two and four letters, as likely as each other: one token each (for the simulator's
# tokenizer as for this model) and four characters per token with the space, like English text.
_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
_SHORT = tuple(c + v for c in _CONSONANTS for v in _VOWELS)
_LONG = tuple(c + v + d + w for c in _CONSONANTS for v in _VOWELS for d in "lmnrst" for w in _VOWELS)
_VOCABULARY: tuple[str, ...] = _SHORT * (len(_LONG) // len(_SHORT)) + _LONG


@dataclass(frozen=True, slots=True)
class _Tenant:
    text: str
    words: tuple[str, ...]
    keys: tuple[int, ...]
    """Chained keys of the context's whole token blocks."""
    content: tuple[int, ...]
    """Hash of each whole block's tokens alone (the control re-chains them behind its unique header)."""
    leftover: tuple[str, ...]
    """Tokens after the last whole block."""


@cache
def _tenants(tenants: int, low: int, high: int, block: int) -> tuple[_Tenant, ...]:
    """Tenant contexts: deterministic text, the same in every run and seed."""
    out: list[_Tenant] = []
    for index in range(tenants):
        rng = random.Random(f"tenant-{index}")
        words = (f"ten{index % 10}", *rng.choices(_VOCABULARY, k=rng.randint(low, high) - 1))
        whole = len(words) // block
        content = tuple(hash(words[i * block : (i + 1) * block]) for i in range(whole))
        keys: list[int] = []
        key = 0
        for part in content:
            key = hash((key, part))
            keys.append(key)
        out.append(_Tenant(" ".join(words), words, tuple(keys), content, words[whole * block :]))
    return tuple(out)


@dataclass(slots=True)
class Request:
    index: int
    tenant: int
    unit_arrival: float
    """Arrival time at a rate of 1 request/s (scaled per load point)."""
    question: tuple[str, ...]
    output_tokens: int
    prompt_tokens: int
    arrival: float = 0.0
    cached: int = 0
    first_token: float = math.nan
    finish: float = math.nan


class Workload:
    """The requests of one (workload, seed): contents fixed, arrival times scaled per rate."""

    def __init__(self, spec: WorkloadSpec, model: EngineModel, seed: int, count: int) -> None:
        if not spec.shared and spec.header_tokens != model.block_tokens:
            raise ValueError("the control's unique header must be exactly one KV block")
        self.spec = spec
        self.block = model.block_tokens
        self.tenants = _tenants(spec.tenants, *spec.context_tokens, model.block_tokens)
        rng = random.Random(f"{spec.name}-{seed}")
        cumulative = list(accumulate(spec.popularity()))
        self.requests: list[Request] = []
        clock = 0.0
        for index in range(count):
            clock += rng.expovariate(1.0)
            tenant = min(bisect(cumulative, rng.random() * cumulative[-1]), spec.tenants - 1)
            question = tuple(rng.choices(_VOCABULARY, k=rng.randint(*spec.question_tokens)))
            header = 0 if spec.shared else spec.header_tokens
            prompt_tokens = header + len(self.tenants[tenant].words) + len(question)
            self.requests.append(
                Request(index, tenant, clock, question, rng.randint(*spec.output_tokens), prompt_tokens)
            )
        self.seed = seed

    def header(self, request: Request) -> tuple[str, ...]:
        """The control's unique first block: an id, then filler (exactly one token block)."""
        digits = f"{self.seed}x{request.index:07d}"
        ident = tuple(digits[i : i + 4] for i in range(0, len(digits), 4))
        filler = ("ask",) * (self.spec.header_tokens - 1 - len(ident))
        return ("req", *ident, *filler)

    def prompt(self, request: Request) -> str:
        """The prompt text the balancer sees (one word = one token)."""
        tenant = self.tenants[request.tenant]
        text = tenant.text + " " + " ".join(request.question)
        if self.spec.shared:
            return text
        return " ".join(self.header(request)) + " " + text

    def block_keys(self, request: Request) -> list[int]:
        """Chained hashes of the prompt's whole token blocks, as the replica's KV cache keys them."""
        tenant = self.tenants[request.tenant]
        block = self.block
        if self.spec.shared:
            keys = list(tenant.keys)
            key = keys[-1] if keys else 0
        else:
            keys = []
            key = hash((0, hash(self.header(request))))
            keys.append(key)
            for part in tenant.content:
                key = hash((key, part))
                keys.append(key)
        tail = tenant.leftover + request.question
        for i in range(len(tail) // block):
            key = hash((key, hash(tail[i * block : (i + 1) * block])))
            keys.append(key)
        return keys


# --- replicas --------------------------------------------------------------------------------------


class _Block:
    """A KV block in a replica's cache."""

    __slots__ = ("owner", "refs")

    def __init__(self, owner: _Running) -> None:
        self.refs = 1
        self.owner: _Running | None = owner
        """The request computing it; None once computed."""


@dataclass(slots=True, eq=False)
class _Running:
    request: Request
    keys: list[int]
    uncached: int
    output_blocks: int
    computed: bool = False
    """Whether its prefill is done (the blocks it inserted are then usable by others)."""


class Replica:
    """One engine: admission queue, chunked prefill, batched decode, KV cache with prefix reuse."""

    def __init__(self, index: int, model: EngineModel, sim: _Simulation) -> None:
        self.index = index
        self.deployment = Deployment(
            id=f"replica-{index}", model_name="llm", provider="sim", upstream_model="llm"
        )
        self.model = model
        self.sim = sim
        self.waiting: deque[_Running] = deque()
        self.prefilling: deque[_Running] = deque()
        self.remaining = 0.0
        """Uncached tokens of the head of ``prefilling`` still to compute."""
        self.decoding: list[tuple[float, int, _Running]] = []
        self.steps = 0.0
        """Decode steps done so far (fractional): a sequence ends when this reaches its mark."""
        self.updated = 0.0
        self.version = 0
        self.blocks: dict[int, _Block] = {}
        self.evictable: OrderedDict[int, None] = OrderedDict()
        self.reserved = 0
        self._chunk = float(model.chunk_tokens)
        self._prefill_step = model.prefill_ms_per_token * model.chunk_tokens / 1000

    # The step time and the rates it implies are constant between two events of this replica.
    def _step(self) -> float:
        step = self.model.decode_step_s(len(self.decoding))
        return step + self._prefill_step if self.prefilling else step

    def advance(self, now: float) -> None:
        elapsed = now - self.updated
        if elapsed > 0:
            step = self._step()
            if step > 0:
                if self.decoding:
                    self.steps += elapsed / step
                if self.prefilling:
                    self.remaining -= elapsed * self._chunk / step
        self.updated = now

    def arrive(self, running: _Running) -> None:
        self.waiting.append(running)
        self._admit()
        self._schedule()

    def wake(self, now: float) -> None:
        self.advance(now)
        while self.prefilling and self.remaining <= _EPS:
            self._first_token(self.prefilling.popleft(), now)
            if self.prefilling:
                self.remaining = float(self.prefilling[0].uncached)
        while self.decoding and self.decoding[0][0] - self.steps <= _EPS:
            self._finish(heapq.heappop(self.decoding)[2], now)
        self._admit()
        self._schedule()

    def _schedule(self) -> None:
        step = self._step()
        self.version += 1
        if step <= 0:
            return
        due = math.inf
        if self.prefilling:
            due = self.remaining * step / self._chunk
        if self.decoding:
            due = min(due, (self.decoding[0][0] - self.steps) * step)
        self.sim.wake_at(self.updated + max(due, 0.0), self)

    def _admit(self) -> None:
        limit = self.model.max_batch
        while self.waiting and len(self.prefilling) + len(self.decoding) < limit:
            running = self.waiting[0]
            if not self._allocate(running):
                break
            self.waiting.popleft()
            if not self.prefilling:
                self.remaining = float(running.uncached)
            self.prefilling.append(running)

    def _fits(self, running: _Running) -> bool:
        """Whether the prompt's missing blocks and the output reservation fit once evictable blocks go."""
        blocks = self.blocks
        free = self.model.kv_blocks - len(blocks) - self.reserved + len(self.evictable)
        if len(running.keys) + running.output_blocks <= free:
            return True  # even if every block were missing
        need = running.output_blocks
        for key in running.keys:
            entry = blocks.get(key)
            if entry is None or entry.refs == 0:
                need += 1  # a new block, or an evictable one that pinning takes from what can be evicted
        return need <= free

    def _allocate(self, running: _Running) -> bool:
        """Pin the prompt's blocks (inserting the missing ones) and reserve output blocks, if they fit."""
        if not self._fits(running):
            return False
        blocks = self.blocks
        evictable = self.evictable
        hit = 0
        prefix = True
        for key in running.keys:
            entry = blocks.get(key)
            if entry is None:
                blocks[key] = _Block(running)
                prefix = False
                continue
            if entry.refs == 0:
                del evictable[key]
            entry.refs += 1
            if prefix:
                owner = entry.owner
                if owner is None or owner.computed:
                    entry.owner = None
                    hit += 1
                else:
                    prefix = False
        self.reserved += running.output_blocks
        excess = len(blocks) + self.reserved - self.model.kv_blocks
        for _ in range(excess):
            del blocks[evictable.popitem(last=False)[0]]
        request = running.request
        request.cached = min(hit * self.model.block_tokens, request.prompt_tokens - 1)
        running.uncached = request.prompt_tokens - request.cached
        return True

    def _first_token(self, running: _Running, now: float) -> None:
        request = running.request
        request.first_token = now
        running.computed = True
        if self.sim.ttft_at_first_token:
            self.sim.load.observe_ttft(self.deployment.id, now - request.arrival)
        if request.output_tokens <= 1:
            self._finish(running, now)
        else:
            mark = self.steps + request.output_tokens - 1
            heapq.heappush(self.decoding, (mark, request.index, running))

    def _finish(self, running: _Running, now: float) -> None:
        request = running.request
        request.finish = now
        load = self.sim.load
        load.finish(self.deployment.id)
        if not self.sim.ttft_at_first_token:
            # As the gateway settles a stream: at its end, with the time its first token took.
            load.observe_ttft(self.deployment.id, request.first_token - request.arrival)
        blocks = self.blocks
        evictable = self.evictable
        # Freed tail first, so the tail of a prompt is evicted before its (more shareable) head.
        for key in reversed(running.keys):
            entry = blocks[key]
            entry.refs -= 1
            if entry.refs == 0:
                evictable[key] = None
        self.reserved -= running.output_blocks
        running.keys = []


# --- simulation ------------------------------------------------------------------------------------


def make_balancer(name: str, load: LoadTracker, seed: int) -> Balancer:
    """The gateway's balancer of that label, with its default parameters."""
    rng = random.Random(f"balancer-{name}-{seed}")
    if name == "round-robin":
        return RoundRobin()
    if name == "random":
        return WeightedRandom(rng)
    if name == "least-outst.":
        return LeastOutstanding(load, rng)
    if name == "p2c-ewma":
        return PeakEwmaP2C(load, rng)
    if name == "session":
        return SessionAffinity(LeastOutstanding(load, rng))
    if name == "prefix":
        return PrefixAffinity(load)
    if name == PREFIX_ABS32:
        return PrefixAffinity(load, balance_abs=32)
    raise ValueError(f"unknown balancer {name!r}")


class _Simulation:
    def __init__(self, model: EngineModel, ttft_at_first_token: bool = False) -> None:
        self.ttft_at_first_token = ttft_at_first_token
        self.now = 0.0
        self.load = LoadTracker(clock=self.clock)
        self.replicas = [Replica(i, model, self) for i in range(model.replicas)]
        self._events: list[tuple[float, int, int, Replica]] = []
        self._sequence = 0

    def clock(self) -> float:
        return self.now

    def wake_at(self, when: float, replica: Replica) -> None:
        self._sequence += 1
        heapq.heappush(self._events, (when, self._sequence, replica.version, replica))

    def run(self, workload: Workload, rate: float, balancer: Balancer) -> None:
        by_id = {r.deployment.id: r for r in self.replicas}
        candidates = tuple(r.deployment for r in self.replicas)
        block = workload.block
        events = self._events
        requests = workload.requests
        next_arrival = 0
        for request in requests:
            request.arrival = request.unit_arrival / rate
            request.cached = 0
            request.first_token = request.finish = math.nan
        while next_arrival < len(requests) or events:
            if next_arrival < len(requests) and (
                not events or requests[next_arrival].arrival <= events[0][0]
            ):
                request = requests[next_arrival]
                next_arrival += 1
                self.now = request.arrival
                hints = RouteHints(session=f"tenant-{request.tenant}", prompt=workload.prompt(request))
                replica = by_id[balancer.choose(candidates, hints).id]
                self.load.start(replica.deployment.id)
                replica.advance(self.now)
                output_blocks = -(-request.output_tokens // block)
                keys = workload.block_keys(request)
                replica.arrive(_Running(request, keys, request.prompt_tokens, output_blocks))
                continue
            when, _, version, replica = heapq.heappop(events)
            if version != replica.version:
                continue
            self.now = when
            replica.wake(when)


@dataclass(frozen=True, slots=True)
class RunStats:
    """What one (workload, seed, rate, balancer) run measured, over its requests after warm-up."""

    offered_rps: float
    hit_rate: float
    ttft_p50: float
    ttft_p90: float
    ttft_p99: float
    tpot_p50: float
    goodput_rps: float
    counts: tuple[int, ...] = field(default=())
    """Requests sent to each replica."""


def _quantile(ordered: Sequence[float], q: float) -> float:
    if not ordered:
        return math.nan
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def simulate(
    workload: Workload,
    model: EngineModel,
    rate: float,
    balancer_name: str,
    seed: int,
    slo: Slo,
    warmup: float = 0.2,
    ttft_at_first_token: bool = False,
) -> RunStats:
    """Run the workload at ``rate`` requests/s through a fresh fleet and a fresh balancer.

    The load tracker hears of a request's time to first token when the request ends, as the gateway
    reports it (``routing/attempt.py`` settles a stream at its end); ``ttft_at_first_token`` reports
    it at the first token instead.
    """
    sim = _Simulation(model, ttft_at_first_token)
    balancer = make_balancer(balancer_name, sim.load, seed)
    sim.run(workload, rate, balancer)
    measured = workload.requests[int(len(workload.requests) * warmup) :]
    ttfts = sorted(r.first_token - r.arrival for r in measured)
    tpots = sorted(_tpot(r) for r in measured)
    good = sum(1 for r in measured if r.first_token - r.arrival <= slo.ttft_s and _tpot(r) <= slo.tpot_s)
    prompt = sum(r.prompt_tokens for r in measured)
    counts = tuple(sim.load.get(r.deployment.id).requests for r in sim.replicas)
    return RunStats(
        offered_rps=rate,
        hit_rate=sum(r.cached for r in measured) / prompt,
        ttft_p50=_quantile(ttfts, 0.50),
        ttft_p90=_quantile(ttfts, 0.90),
        ttft_p99=_quantile(ttfts, 0.99),
        tpot_p50=_quantile(tpots, 0.50),
        goodput_rps=good / len(measured) * rate,
        counts=counts,
    )


def _tpot(request: Request) -> float:
    if request.output_tokens <= 1:
        return 0.0
    return (request.finish - request.first_token) / (request.output_tokens - 1)
