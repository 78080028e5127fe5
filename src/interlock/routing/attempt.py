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

from interlock.errors import (
    GatewayError,
    RateLimited,
    UpstreamConnectError,
    UpstreamStreamBroken,
    UpstreamTimeout,
)
from interlock.gateway.context import Attempt, Chunks, Reply, RequestContext
from interlock.providers.base import Provider
from interlock.routing.balancers.base import prompt_text
from interlock.routing.latency import Judgement, LatencySample
from interlock.routing.retry import classify
from interlock.routing.snapshot import Deployment, ModelRoute
from interlock.routing.state import RoutingState
from interlock.telemetry.tracing import NO_TRACER, AttemptSpan, Tracer

__all__ = ["latency_sample", "run_attempt"]


class _Settlement:
    """Settle an attempt's bookkeeping exactly once."""

    __slots__ = ("_breaker", "_deployment", "_latency", "_limiter", "_load", "done", "judgement")

    def __init__(self, state: RoutingState, model: ModelRoute, deployment: Deployment) -> None:
        self._breaker = state.breaker(model, deployment)
        self._limiter = state.limiter(model, deployment)
        self._latency = state.latency(deployment)
        self._load = state.load
        self._deployment = deployment.id
        self.done = False
        self.judgement: Judgement | None = None

    def first_token(self, sample: LatencySample) -> None:
        """A stream's first chunk is in: it is judged (and balancers learn it) now, not at its end."""
        self.judgement = self._latency.judge(sample)
        self._load.observe(self._deployment, sample)

    def success(self, sample: LatencySample | None = None) -> None:
        """The call succeeded: a complete answer with its latency, or a stream that ran to its end."""
        if not self._finish():
            return
        if sample is not None:
            self.judgement = self._latency.judge(sample)
            self._load.observe(self._deployment, sample)
        judgement = self.judgement
        self._limiter.release(judgement)
        self._breaker.record(True, slow=judgement is not None and self._breaker.is_slow(judgement))

    def failure(self, err: GatewayError) -> None:
        if not self._finish():
            return
        if classify(err) == "retry":
            self._load.observe_failure(self._deployment, err.retry_after)
            self._limiter.release(overloaded=err.status in (429, 503))
            self._breaker.record(False)
            if isinstance(err, UpstreamConnectError):
                self._breaker.trip()  # connection refused: no need to wait for more evidence
        else:  # the upstream answered; the request was at fault
            self._limiter.release()
            self._breaker.record(True)

    def abandon(self) -> None:
        if not self._finish():
            return
        self._limiter.release()
        self._breaker.release()

    def _finish(self) -> bool:
        if self.done:
            return False
        self.done = True
        self._load.finish(self._deployment)
        return True


def latency_sample(ctx: RequestContext, seconds: float, reply: Reply | None) -> LatencySample:
    """The comparable latency of a call that answered (see :mod:`interlock.routing.latency`)."""
    if ctx.stream:
        return LatencySample("first_token", seconds, len(prompt_text(ctx.body)) // 4)
    if ctx.operation == "embeddings":
        return LatencySample("embedding", seconds, _input_chars(ctx.body.get("input")) // 4)
    return LatencySample("answer", seconds, _output_tokens(ctx, reply))


def _output_tokens(ctx: RequestContext, reply: Reply | None) -> int:
    usage = reply.body.get("usage") if reply is not None and reply.body is not None else None
    if isinstance(usage, dict):
        tokens = usage.get("completion_tokens")
        if isinstance(tokens, int) and tokens >= 0:
            return tokens
    asked = ctx.body.get("max_completion_tokens") or ctx.body.get("max_tokens")
    return asked if isinstance(asked, int) and asked > 0 else 16


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
) -> Reply:
    """Call ``deployment`` once; raise its error, or return its reply (a stream's first chunk is in)."""
    started = time.perf_counter()
    span = tracer.attempt(ctx, deployment)
    ctx.begin_wait()
    try:
        try:
            await state.limiter(model, deployment).acquire()
        except RateLimited as err:
            state.breaker(model, deployment).release()
            _record(ctx, deployment, err.kind, started)
            span.end(err.kind, err)
            raise
        state.load.start(deployment.id)
        settle = _Settlement(state, model, deployment)
        called = time.perf_counter()
        try:
            reply = await _call(ctx, model, deployment, provider, span)
        except GatewayError as err:
            settle.failure(err)
            _record(ctx, deployment, err.kind, started)
            span.end(err.kind, err)
            raise
        except BaseException:
            settle.abandon()
            _record(ctx, deployment, "cancelled", started)
            span.end("cancelled")
            raise
    finally:
        ctx.end_wait()
    ttft = time.perf_counter() - called
    reply.deployment = deployment
    if reply.stream is None:
        settle.success(latency_sample(ctx, ttft, reply))
        span.end("ok")
    else:
        settle.first_token(latency_sample(ctx, ttft, None))
        reply.stream = _settle_at_end(ctx, reply.stream, settle, ttft, span)
    _record(ctx, deployment, "ok", started)
    return reply


async def _call(
    ctx: RequestContext, model: ModelRoute, deployment: Deployment, provider: Provider, span: AttemptSpan
) -> Reply:
    body = dict(ctx.body)
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
    ctx: RequestContext, chunks: AsyncIterator[Chunks], settle: _Settlement, ttft: float, span: AttemptSpan
) -> AsyncIterator[Chunks]:
    completed = False
    try:
        async for batch in chunks:
            yield batch
        completed = True
    except GatewayError as err:
        settle.failure(err)
        span.end(err.kind, err, ctx.usage)
        raise
    finally:
        # a stream that ran to its end succeeded; one closed early (the client left) says nothing
        if completed:
            settle.success()
            span.end("ok", None, ctx.usage)
        else:
            settle.abandon()
            span.end("abandoned", None, ctx.usage)
        await _aclose(chunks)


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


def _record(ctx: RequestContext, deployment: Deployment, outcome: str, started: float) -> None:
    ctx.attempts.append(Attempt(deployment.id, outcome, round((time.perf_counter() - started) * 1000.0, 3)))
