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
from interlock.routing.retry import classify
from interlock.routing.snapshot import Deployment, ModelRoute
from interlock.routing.state import RoutingState
from interlock.telemetry.tracing import NO_TRACER, AttemptSpan, Tracer

__all__ = ["run_attempt"]


class _Settlement:
    """Settle an attempt's bookkeeping exactly once."""

    __slots__ = ("_breaker", "_deployment", "_limiter", "_load", "done")

    def __init__(self, state: RoutingState, model: ModelRoute, deployment: Deployment) -> None:
        self._breaker = state.breaker(model, deployment)
        self._limiter = state.limiter(model, deployment)
        self._load = state.load
        self._deployment = deployment.id
        self.done = False

    def first_token(self, ttft_s: float) -> None:
        """A stream's first chunk is in: balancers learn its TTFT now, not when it ends."""
        self._load.observe_ttft(self._deployment, ttft_s)

    def success(self, ttft_s: float, observed: bool = False) -> None:
        if not self._finish():
            return
        if not observed:
            self._load.observe_ttft(self._deployment, ttft_s)
        self._limiter.release(ttft_s)
        self._breaker.record(True, ttft_s)

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
        settle.success(ttft)
        span.end("ok")
    else:
        settle.first_token(ttft)
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
            settle.success(ttft, observed=True)
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
