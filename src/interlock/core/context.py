"""The request as it flows through the chain: :class:`RequestContext` in, :class:`Reply` out."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from interlock.core.access import EVERYTHING, AllowList
from interlock.core.decision import Decision
from interlock.core.errors import GatewayError

__all__ = [
    "CLIENT_CLOSED",
    "MASTER",
    "Attempt",
    "Chunk",
    "Chunks",
    "DeploymentInfo",
    "Front",
    "Hold",
    "Operation",
    "Principal",
    "Priority",
    "Reply",
    "RequestContext",
    "Usage",
    "has_output",
]

CLIENT_CLOSED = 499
"""Status recorded when the client went away before the answer was complete (nginx's convention)."""

Operation = Literal["chat", "embeddings"]
Front = Literal["openai", "anthropic"]
Priority = Literal["interactive", "batch"]
"""A request's class where capacity is short: batch work waits behind every interactive request."""
Chunk = dict[str, Any]
"""One streamed chunk in OpenAI ``chat.completion.chunk`` shape."""
Chunks = list[Chunk]
"""The chunks that arrived together (never empty). Streams move in these batches so that chunks an
upstream sent in one burst cross every stage once and reach the client in one write."""


def has_output(chunk: Chunk) -> bool:
    """Whether a chunk carries generated output (text or a tool call), not only a role or usage."""
    choices = chunk.get("choices")
    if not choices:
        return False
    delta = choices[0].get("delta") if isinstance(choices[0], dict) else None
    return isinstance(delta, dict) and bool(delta.get("content") or delta.get("tool_calls"))


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key, whom it belongs to, its role, and what it may use.

    Built once per key when the key cache loads (never per request). ``roles`` holds the key's one
    role (``admin``, ``operator``, ``team_admin``, ``developer`` or ``viewer``). ``models`` and
    ``pools`` are the key's allow-lists (empty: no limit); ``expires_at`` is a Unix time.
    ``user_id``, ``team_id`` and ``org_id`` are what budgets, limits and spend key on.
    """

    key_id: str
    name: str
    is_master: bool = False
    user_id: str | None = None
    team_id: str | None = None
    org_id: str | None = None
    roles: tuple[str, ...] = ()
    models: AllowList = EVERYTHING
    pools: AllowList = EVERYTHING
    expires_at: float | None = None

    @property
    def role(self) -> str | None:
        """The key's role (the first of ``roles``), or ``None`` for a key without one."""
        return self.roles[0] if self.roles else None

    def expired(self, now: float) -> bool:
        """Whether the key has expired at Unix time ``now``."""
        return self.expires_at is not None and self.expires_at <= now


MASTER = Principal(key_id="master", name="master", is_master=True, roles=("admin",))
"""The caller holding the master key: the one principal that is not a stored key."""


class DeploymentInfo(Protocol):
    """What the request path knows of the deployment that served it.

    Routing's ``Deployment`` is the one implementation. The context names it through this protocol
    because core imports nothing above it; what reads a finished request (the record, the trace, the
    response headers) needs no more than these fields.
    """

    @property
    def id(self) -> str: ...
    @property
    def model_name(self) -> str: ...
    @property
    def provider(self) -> str: ...
    @property
    def upstream_model(self) -> str: ...
    @property
    def pool(self) -> str | None: ...
    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> float:
        """USD cost of one request at this deployment's prices."""
        ...


class Hold(Protocol):
    """Something a request took before it ran — a rate-limit slot, a budget reservation — to be
    settled with what the request really used once it is over."""

    async def settle(self, ctx: RequestContext, cost_usd: float) -> None:
        """Settle, now that ``ctx`` is over and cost ``cost_usd`` (run in the background, after the
        answer has left)."""
        ...


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts as the upstream reported them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    @classmethod
    def from_openai(cls, usage: Any) -> Usage | None:
        """Read an OpenAI ``usage`` object; None when absent or malformed."""
        if not isinstance(usage, dict):
            return None
        details = usage.get("prompt_tokens_details")
        cached = details.get("cached_tokens") if isinstance(details, dict) else 0
        return cls(
            prompt_tokens=_int(usage.get("prompt_tokens")),
            completion_tokens=_int(usage.get("completion_tokens")),
            cached_tokens=_int(cached),
        )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try at one deployment, for the trace and the ``x-interlock-attempts`` header.

    ``latency_ms`` runs from the attempt's start to its answer, its error, or — for a stream that
    was returned — the stream's end; ``first_token_ms`` is when a stream's first chunk came (from
    the attempt's start). ``start_ms`` is the attempt's start after the request's arrival.
    ``upstream`` is False for an attempt refused before it reached the upstream (no free slot).
    """

    deployment: str
    outcome: str
    latency_ms: float
    start_ms: float | None = None
    first_token_ms: float | None = None
    upstream: bool = True


@dataclass(slots=True)
class RequestContext:
    """Everything the stages know about one request. Stages fill fields in as it flows."""

    request_id: str
    operation: Operation
    model: str
    body: dict[str, Any]
    stream: bool
    front: Front = "openai"
    api_key: str | None = None
    client_request_id: str | None = None
    """The caller's own ``x-request-id`` (sanitised), kept for correlation; ``request_id`` is ours."""
    traceparent: str | None = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    """The raw request headers (lower-case names), for stages that need one."""
    session: str | None = None
    required_pool: str | None = None
    required_labels: dict[str, str] = field(default_factory=dict)
    wants_usage: bool = False
    priority: Priority = "interactive"
    received_at: float = field(default_factory=time.perf_counter)
    received_wall: float = field(default_factory=time.time)
    principal: Principal | None = None
    deployment: DeploymentInfo | None = None
    attempts: list[Attempt] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    """Each routing decision (candidates, verdicts, pick), in the order they were made."""
    hedged: bool = False
    max_cost: tuple[int, int, int] | None = None
    """The request's estimated prompt tokens, most output tokens and most cost (micro-dollars), once
    a governance stage has worked it out (``governance.estimate``)."""
    holds: list[Hold] = field(default_factory=list)
    """What governance stages took for this request, settled when it is recorded."""
    reply_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    """Headers stages add to the answer, error or not (``x-ratelimit-*``)."""
    tier: dict[str, object] | None = None
    """For a request to a tiered alias: the alias, tier, model, confidence and reasons."""
    usage: Usage | None = None
    first_token_at: float | None = None
    token_gaps: list[float] = field(default_factory=list)
    """Seconds between consecutive streamed chunks that carried output."""
    reply_body: dict[str, Any] | None = None
    """The complete (non-streamed) answer, kept by reference for the request log."""
    finished_at: float | None = None
    upstream_s: float = 0.0
    reply_overhead_ms: float | None = None
    """Gateway time (upstream waits excluded) when the reply left the chain: for a stream, when its
    first chunk was ready."""
    stream_overhead_s: float = 0.0
    """The chain's own time on a stream's later chunks (upstream waits excluded), added to
    ``reply_overhead_ms`` when the stream ends."""
    status: int = 200
    error: GatewayError | None = None

    _waiting: int = 0
    _wait_started: float = 0.0

    def header(self, name: str) -> str | None:
        """The first value of header ``name``, if present."""
        key = name.lower().encode("latin-1")
        for header_name, value in self.headers:
            if header_name == key:
                return value.decode("latin-1")
        return None

    def begin_wait(self) -> None:
        """The request starts waiting on an upstream (or a backoff). Overlapping waits (a hedge)
        count once."""
        if self._waiting == 0:
            self._wait_started = time.perf_counter()
        self._waiting += 1

    def end_wait(self) -> None:
        self._waiting -= 1
        if self._waiting == 0:
            self.upstream_s += time.perf_counter() - self._wait_started

    def stream_ended(self, index: int, outcome: str) -> None:
        """The stream of attempt ``index`` ended (``ok``, an error kind, or ``abandoned``): the
        attempt spans until now, not only until its first token."""
        if index >= len(self.attempts):
            return
        attempt = self.attempts[index]
        if attempt.start_ms is not None:
            end_ms = (time.perf_counter() - self.received_at) * 1000.0
            latency = round(end_ms - attempt.start_ms, 3)
            self.attempts[index] = replace(attempt, outcome=outcome, latency_ms=latency)

    def elapsed_ms(self) -> float:
        """Milliseconds since the request arrived."""
        return (time.perf_counter() - self.received_at) * 1000.0

    def overhead_ms(self) -> float:
        """Time spent in the gateway so far, excluding time waiting on upstreams."""
        return max(0.0, self.elapsed_ms() - self.upstream_s * 1000.0)

    def total_overhead_ms(self) -> float:
        """The gateway's own time on the whole request (a stream's later chunks included), in ms."""
        at_reply = self.reply_overhead_ms if self.reply_overhead_ms is not None else self.overhead_ms()
        return round(at_reply + self.stream_overhead_s * 1000.0, 3)

    def ttft_ms(self) -> float | None:
        """Milliseconds from arrival to the first streamed output, if there was one."""
        if self.first_token_at is None:
            return None
        return round((self.first_token_at - self.received_at) * 1000.0, 3)

    def cost(self) -> float:
        """USD cost of the request at the prices of the deployment that answered (0 if none did)."""
        usage, deployment = self.usage, self.deployment
        if usage is None or deployment is None:
            return 0.0
        return deployment.cost(usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens)


@dataclass(slots=True)
class Reply:
    """What the chain returns: a complete JSON body, or a stream of chunk batches.

    ``raw`` holds the upstream's bytes when they can be forwarded unchanged; ``body`` is always the
    parsed OpenAI-shaped object for a complete reply.
    """

    body: dict[str, Any] | None = None
    raw: bytes | None = None
    stream: AsyncIterator[Chunks] | None = None
    deployment: DeploymentInfo | None = None
    """Who answered."""
