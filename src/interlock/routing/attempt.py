"""One attempt at one deployment: concurrency slot, provider call, and what the outcome teaches the
breaker, the limiter and the load tracker.

Every attempt settles exactly once: success (with its time to first token), a failure that says
something about the deployment (a retryable error), a failure that does not (the caller's own 4xx:
the upstream worked), or no verdict at all (the client left, a hedge lost).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from interlock.core.context import Attempt, Chunk, Chunks, Reply, RequestContext
from interlock.core.errors import (
    GatewayError,
    RateLimited,
    UpstreamConnectError,
    UpstreamStreamBroken,
    UpstreamTimeout,
)
from interlock.core.tracing import NO_TRACER, AttemptSpan, Tracer
from interlock.providers.base import Provider
from interlock.routing.balancers.base import prompt_chars
from interlock.routing.latency import Judgement, LatencyModel, LatencySample
from interlock.routing.retry import classify
from interlock.routing.snapshot import Deployment, ModelRoute
from interlock.routing.state import RoutingState

__all__ = ["Stall", "first_byte_due", "latency_sample", "run_attempt"]

_CRAWL_AFTER_BATCHES = 8
_CRAWL_FACTOR = 5.0
_SILENCE_FACTOR = 20.0
_SILENCE_FLOOR_S = 1.0
_STALL_FACTOR = 2.0
"""A call still without its first byte after twice what its shape has taken lately counts as late
for the balancers (a hung deployment is avoided long before its calls time out)."""


class _Settlement:
    """Settle an attempt's bookkeeping exactly once."""

    __slots__ = (
        "_breaker",
        "_deployment",
        "_latency",
        "_limiter",
        "_load",
        "_tenant",
        "_ticket",
        "done",
        "judgement",
    )

    def __init__(
        self, state: RoutingState, model: ModelRoute, deployment: Deployment, ticket: int, tenant: str
    ) -> None:
        self._tenant = tenant
        self._breaker = state.breaker(model, deployment)
        self._limiter = state.limiter(model, deployment)
        self._latency = state.latency(deployment)
        self._load = state.load
        self._deployment = deployment.id
        self._ticket = ticket
        self.done = False
        self.judgement: Judgement | None = None

    def first_token(self, sample: LatencySample) -> None:
        """A stream's first chunk is in: it is judged (and balancers learn it) now, not at its end."""
        self._load.answered(self._deployment, self._ticket)
        self.judgement = self._latency.judge(sample)
        self._load.observe(self._deployment, sample)

    def usual_gap(self) -> float | None:
        """The mean gap between chunks the deployment's streams have had lately."""
        return self._latency.recent("token_gap", 0)

    def learn_gap(self, silence: _Silence) -> None:
        if silence.batches > _CRAWL_AFTER_BATCHES:
            self._latency.observe(LatencySample("token_gap", silence.mean_gap(), 0))

    def stalled(self, sample: LatencySample) -> None:
        """A hedge overtook this call, which had produced nothing by then: what it had taken so far
        is a lower bound of its latency, and a slow call for its breaker."""
        if not self._finish():
            return
        # the balancers learn it at once; the limiter and the baselines do not: a lower bound is
        # no measurement, and a hedge must never shrink capacity
        self._load.observe(self._deployment, sample)
        self._limiter.release(tenant=self._tenant)
        self._breaker.record(True, slow=True)

    def success(self, sample: LatencySample | None = None) -> None:
        """The call succeeded: a complete answer with its latency, or a stream that ran to its end."""
        if not self._finish():
            return
        if sample is not None:
            self.judgement = self._latency.judge(sample)
            self._load.observe(self._deployment, sample)
        judgement = self.judgement
        self._limiter.release(judgement, tenant=self._tenant)
        self._breaker.record(True, slow=judgement is not None and self._breaker.is_slow(judgement))

    def failure(self, err: GatewayError) -> None:
        if not self._finish():
            return
        if classify(err) == "retry":
            self._load.observe_failure(self._deployment, err.retry_after)
            self._limiter.release(overloaded=err.status in (429, 503), tenant=self._tenant)
            self._breaker.record(False)
            if isinstance(err, UpstreamConnectError):
                self._breaker.trip()  # connection refused: no need to wait for more evidence
        else:  # the upstream answered; the request was at fault
            self._limiter.release(tenant=self._tenant)
            self._breaker.record(True)

    def abandon(self) -> None:
        if not self._finish():
            return
        self._limiter.release(tenant=self._tenant)
        self._breaker.release()

    def _finish(self) -> bool:
        if self.done:
            return False
        self.done = True
        self._load.finish(self._deployment, self._ticket)
        return True


def latency_sample(ctx: RequestContext, seconds: float, reply: Reply | None) -> LatencySample:
    """The comparable latency of a call that answered (see :mod:`interlock.routing.latency`)."""
    if ctx.stream:
        return LatencySample("first_token", seconds, prompt_chars(ctx.body) // 4)
    if ctx.operation == "embeddings":
        return LatencySample("embedding", seconds, _input_chars(ctx.body.get("input")) // 4)
    return LatencySample("answer", seconds, _output_tokens(ctx, reply))


class Stall:
    """Set by the router when a hedge fires because this attempt produced nothing in time."""

    __slots__ = ("fired",)

    def __init__(self) -> None:
        self.fired = False


def first_byte_due(
    ctx: RequestContext, latency: LatencyModel, factor: float, shape: LatencySample | None = None
) -> float | None:
    """Seconds after which a call has stalled: ``factor`` times what calls of its shape have taken
    lately on the deployment (for a complete answer, one of ``max_tokens``); None while unknown.
    ``shape`` is the request's :func:`latency_sample` when the caller already has it."""
    shape = shape or latency_sample(ctx, 0.0, None)
    size: int | None = shape.size
    if shape.kind == "answer" and not _asked_tokens(ctx):
        size = None  # no max_tokens: as long as the longest answers lately
    recent = latency.recent(shape.kind, size)
    return None if recent is None else recent * factor


def _output_tokens(ctx: RequestContext, reply: Reply | None) -> int:
    usage = reply.body.get("usage") if reply is not None and reply.body is not None else None
    if isinstance(usage, dict):
        tokens = usage.get("completion_tokens")
        if isinstance(tokens, int) and tokens >= 0:
            return tokens
    return _asked_tokens(ctx) or 16


def _asked_tokens(ctx: RequestContext) -> int | None:
    asked = ctx.body.get("max_completion_tokens") or ctx.body.get("max_tokens")
    return asked if isinstance(asked, int) and asked > 0 else None


def _input_chars(value: object) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(len(item) if isinstance(item, str) else 4 * len(item) for item in value)
    return 0


async def run_attempt(
    ctx: RequestContext,
    model: ModelRoute,
    deployment: Deployment,
    provider: Provider,
    state: RoutingState,
    tracer: Tracer = NO_TRACER,
    stall: Stall | None = None,
    body: dict[str, Any] | None = None,
) -> Reply:
    """Call ``deployment`` once; raise its error, or return its reply (a stream's first chunk is in).
    ``stall`` tells whether a hedge overtook it; ``body`` replaces the request's (a continuation)."""
    started = time.perf_counter()
    span = tracer.attempt(ctx, deployment)
    ctx.begin_wait()
    try:
        try:
            tenant = ctx.principal.key_id if ctx.principal is not None else ""
            await state.limiter(model, deployment).acquire(tenant, ctx.priority)
        except RateLimited as err:
            state.breaker(model, deployment).release()
            _record(ctx, deployment, err.kind, started, upstream=False)
            span.end(err.kind, err)
            raise
        # what the request is, for the latency judgements: measured once, timed at each use
        shape = latency_sample(ctx, 0.0, None)
        due = first_byte_due(ctx, state.latency(deployment), _STALL_FACTOR, shape)
        settle = _Settlement(state, model, deployment, state.load.start(deployment.id, due), tenant)
        called = time.perf_counter()
        try:
            reply = await _call(ctx, model, deployment, provider, span, body or ctx.body)
        except GatewayError as err:
            settle.failure(err)
            _record(ctx, deployment, err.kind, started)
            span.end(err.kind, err)
            raise
        except BaseException:
            if stall is not None and stall.fired:
                settle.stalled(replace(shape, seconds=time.perf_counter() - called))
            else:
                settle.abandon()
            _record(ctx, deployment, "cancelled", started)
            span.end("cancelled")
            raise
    finally:
        ctx.end_wait()
    ttft = time.perf_counter() - called
    reply.deployment = deployment
    if reply.stream is None:
        # a complete answer is sized by what came back, not by what was asked
        answered = (
            latency_sample(ctx, ttft, reply) if shape.kind == "answer" else replace(shape, seconds=ttft)
        )
        settle.success(answered)
        span.end("ok")
    else:
        settle.first_token(replace(shape, seconds=ttft))
        reply.stream = _settle_at_end(ctx, reply.stream, settle, span, len(ctx.attempts))
    _record(ctx, deployment, "ok", started, streamed=reply.stream is not None)
    return reply


async def _call(
    ctx: RequestContext,
    model: ModelRoute,
    deployment: Deployment,
    provider: Provider,
    span: AttemptSpan,
    request: dict[str, Any],
) -> Reply:
    body = dict(request)
    body["model"] = deployment.upstream_model
    headers = span.headers
    if not ctx.stream:
        call = provider.embeddings if ctx.operation == "embeddings" else provider.chat
        upstream = await call(body, headers)
        span.answered(upstream.body)
        return Reply(body=upstream.body, raw=upstream.raw)
    first_token_s = model.spec.timeouts.first_token_s
    chunks = provider.chat_stream(body, headers)
    try:
        async with asyncio.timeout(first_token_s):
            first = await anext(chunks)
    except StopAsyncIteration:
        raise UpstreamStreamBroken(
            f"upstream '{deployment.provider}' ended the stream before sending anything"
        ) from None
    except TimeoutError:
        await _aclose(chunks)
        raise UpstreamTimeout(
            f"upstream '{deployment.provider}' sent no first token within {first_token_s:g} s"
        ) from None
    except BaseException:
        await _aclose(chunks)
        raise
    span.answered(first[0])
    return Reply(stream=_prepend(first, chunks))


async def _settle_at_end(
    ctx: RequestContext,
    chunks: AsyncIterator[Chunks],
    settle: _Settlement,
    span: AttemptSpan,
    index: int,
) -> AsyncIterator[Chunks]:
    completed = False
    outcome = "abandoned"
    silence = _Silence(settle.usual_gap())
    try:
        while (batch := await _upstream_next(ctx, chunks, silence)) is not None:
            yield batch
        completed = True
        outcome = "ok"
    except GatewayError as err:
        outcome = err.kind
        settle.failure(err)
        span.end(err.kind, err, ctx.usage)
        raise
    finally:
        # a stream that ran to its end succeeded; one closed early (the client left) says nothing
        if completed:
            settle.learn_gap(silence)
            settle.success()
            span.end("ok", None, ctx.usage)
        else:
            settle.abandon()
            span.end("abandoned", None, ctx.usage)
        silence.close()
        ctx.stream_ended(index, outcome)
        await _aclose(chunks)


class _Silence:
    """A stream's pace. It has stalled when quiet for ``_SILENCE_FACTOR`` times its own mean gap
    between batches so far (never under ``_SILENCE_FLOOR_S``: an engine may pause its decode for a
    long prefill), or crawled when, after a few batches, its mean gap is ``_CRAWL_FACTOR`` times
    what the deployment's streams usually have (a replica turned slow mid-answer)."""

    __slots__ = ("_handle", "_task", "batches", "finished", "fired", "usual_gap", "waited", "waiting_since")

    def __init__(self, usual_gap: float | None) -> None:
        self.batches = 0
        self.waited = 0.0
        self.usual_gap = usual_gap
        self.finished = False
        self.fired = False
        self.waiting_since: float | None = None
        self._task: asyncio.Task[Any] | None = None
        self._handle: asyncio.TimerHandle | None = None

    def begin(self) -> None:
        """A read starts. One watchdog timer per stream checks for silence (a timeout armed around
        every read would cost several microseconds a chunk)."""
        loop = asyncio.get_running_loop()
        self.waiting_since = loop.time()
        self._task = asyncio.current_task()
        if self._handle is None:
            self._handle = loop.call_at(self.waiting_since + self.limit(), self._watch)

    def end(self, started: float) -> None:
        """A read ended (``started``: its perf_counter start)."""
        self.waiting_since = None
        if self.batches:  # the first batch was read with the first token: no gap to learn from
            self.waited += time.perf_counter() - started
        self.batches += 1

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        since = self.waiting_since
        due = (since if since is not None else loop.time()) + self.limit()
        if since is not None and loop.time() >= due and self._task is not None:
            self._handle = None
            self.fired = True
            self._task.cancel()  # the reader turns this into UpstreamTimeout
            return
        self._handle = loop.call_at(due, self._watch)

    def mean_gap(self) -> float:
        gaps = self.batches - 1  # the first batch came with the first token: no gap before it
        return self.waited / gaps if gaps > 0 else 0.0

    def limit(self) -> float:
        return max(_SILENCE_FLOOR_S, self.mean_gap() * _SILENCE_FACTOR)

    def crawling(self) -> str | None:
        usual = self.usual_gap
        if usual is None or self.finished or self.batches < _CRAWL_AFTER_BATCHES:
            return None  # an answer that has finished is only waiting for its usage and end
        mean = self.mean_gap()
        if mean > usual * _CRAWL_FACTOR and mean - usual > 0.02:
            return (
                f"the upstream stream slowed to {mean * 1000:.0f} ms a chunk, {mean / usual:.0f}x its usual"
            )
        return None


async def _upstream_next(
    ctx: RequestContext, chunks: AsyncIterator[Chunks], silence: _Silence
) -> Chunks | None:
    """The next batch, or None at the end; waiting for it is the upstream's time, not the gateway's.
    A stream silent past its limit raises :class:`UpstreamTimeout` (a stalled upstream: the stream
    can resume elsewhere)."""
    crawl = silence.crawling()
    if crawl is not None:
        raise UpstreamTimeout(crawl)
    ctx.begin_wait()
    started = time.perf_counter()
    silence.begin()
    try:
        batch = await anext(chunks, None)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if silence.fired and task is not None and task.uncancel() == 0:
            raise UpstreamTimeout(
                f"the upstream stream went silent for {silence.limit():.1f} s mid-answer"
            ) from None
        raise
    finally:
        ctx.end_wait()
    silence.end(started)
    if batch is not None and not silence.finished:
        silence.finished = any(_finishes(chunk) for chunk in batch)
    return batch


def _finishes(chunk: Chunk) -> bool:
    choices = chunk.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    return isinstance(first, dict) and bool(first.get("finish_reason"))


async def _prepend(first: Chunks, rest: AsyncIterator[Chunks]) -> AsyncIterator[Chunks]:
    try:
        yield first
        async for batch in rest:
            yield batch
    finally:
        await _aclose(rest)


async def _aclose(chunks: AsyncIterator[Chunks]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()


def _record(
    ctx: RequestContext,
    deployment: Deployment,
    outcome: str,
    started: float,
    *,
    upstream: bool = True,
    streamed: bool = False,
) -> None:
    latency = round((time.perf_counter() - started) * 1000.0, 3)
    start = round((started - ctx.received_at) * 1000.0, 3)
    first_token = latency if streamed else None
    ctx.attempts.append(Attempt(deployment.id, outcome, latency, start, first_token, upstream))
