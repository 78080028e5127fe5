"""``account``: the outermost stage. Whatever happens inside, measure and record the outcome.

It measures the request (status, tokens, first token, gaps, the gateway's own time), builds its
:class:`~interlock.store.RequestRecord` and hands that to each of its *recorders* in order — the
metrics, the ``trace`` stage's end of span, the request log — as listed where the chain is built.
For a stream the record is made when the stream ends — completed, broken or abandoned by the
client — because only then are the tokens, the cost and the final status known; this is the one
stage that wraps the stream, so the others that care about the end of a request are recorders
rather than second wrappers. The record is made in a callback right after the current step of the
request's task, so that the reply leaves first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime

from interlock.core.context import CLIENT_CLOSED, Attempt, Chunks, Reply, RequestContext, Usage, has_output
from interlock.core.errors import GatewayError
from interlock.gateway.chain import Next
from interlock.routing.decision import decisions_json
from interlock.store import RequestRecord
from interlock.telemetry.outcome import classify

__all__ = ["AccountStage", "Recorder", "to_record", "tpot_seconds"]

Recorder = Callable[[RequestContext, RequestRecord], None]
"""Takes a finished request and its record; must never block or raise."""


class AccountStage:
    """Measure, price and record every request, handing each record to ``recorders`` in order."""

    def __init__(self, recorders: Sequence[Recorder]) -> None:
        self._recorders = tuple(recorders)

    async def __call__(self, ctx: RequestContext, call_next: Next) -> Reply:
        try:
            reply = await call_next(ctx)
        except GatewayError as exc:
            ctx.error, ctx.status = exc, exc.status
            ctx.reply_overhead_ms = ctx.overhead_ms()
            self._finish(ctx)
            raise
        except asyncio.CancelledError:
            ctx.status = CLIENT_CLOSED
            self._finish(ctx)
            raise
        ctx.reply_overhead_ms = ctx.overhead_ms()
        if reply.stream is not None:
            reply.stream = self._watch(ctx, reply.stream)
            return reply
        if reply.body is not None:
            ctx.reply_body = reply.body
            ctx.usage = Usage.from_openai(reply.body.get("usage"))
        self._finish(ctx)
        return reply

    async def _watch(self, ctx: RequestContext, chunks: AsyncIterator[Chunks]) -> AsyncIterator[Chunks]:
        complete = False
        last = 0.0
        try:
            while True:
                asked, waited = time.perf_counter(), ctx.upstream_s
                batch = await anext(chunks, None)
                if batch is None:
                    break
                now = time.perf_counter()
                # the chain's own time on this batch (what its stages did, not the upstream's wait)
                ctx.stream_overhead_s += max(0.0, now - asked - (ctx.upstream_s - waited))
                for chunk in batch:
                    if has_output(chunk):
                        if ctx.first_token_at is None:
                            ctx.first_token_at = now
                        else:
                            ctx.token_gaps.append(now - last)
                        last = now
                    usage = chunk.get("usage")
                    if usage:
                        ctx.usage = Usage.from_openai(usage)
                yield batch
            complete = True
        except GatewayError as exc:
            ctx.error, ctx.status = exc, exc.status
            raise
        finally:
            if not complete and ctx.error is None:
                ctx.status = CLIENT_CLOSED
            if not complete:  # the attempt under it settles (and notes its end) before the record
                await _aclose(chunks)
            self._finish(ctx)

    def _finish(self, ctx: RequestContext) -> None:
        ctx.finished_at = time.perf_counter()
        # Building the record, metrics and the log entry cost tens of µs: they run just after the
        # reply (or the stream's end) has been handed to the server, not before it.
        asyncio.get_running_loop().call_soon(self._record, ctx)

    def _record(self, ctx: RequestContext) -> None:
        record = to_record(ctx)
        for recorder in self._recorders:
            recorder(ctx, record)


async def _aclose(chunks: AsyncIterator[Chunks]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()


def to_record(ctx: RequestContext) -> RequestRecord:
    """The request-log row for a finished request."""
    usage = ctx.usage or Usage()
    deployment = ctx.deployment
    finished = ctx.finished_at or time.perf_counter()
    principal = ctx.principal
    return RequestRecord(
        request_id=ctx.request_id,
        client_request_id=ctx.client_request_id,
        created_at=datetime.fromtimestamp(ctx.received_wall, UTC),
        key_id=principal.key_id if principal else None,
        user_id=principal.user_id if principal else None,
        team_id=principal.team_id if principal else None,
        model=ctx.model,
        deployment=deployment.id if deployment else None,
        provider=deployment.provider if deployment else None,
        upstream_model=deployment.upstream_model if deployment else None,
        operation=ctx.operation if ctx.front == "openai" else "messages",
        stream=ctx.stream,
        status=ctx.status,
        error_kind=ctx.error.kind if ctx.error else None,
        latency_ms=round((finished - ctx.received_at) * 1000.0, 3),
        ttft_ms=ctx.ttft_ms(),
        overhead_ms=ctx.total_overhead_ms(),
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cached_tokens=usage.cached_tokens,
        cost=ctx.cost(),
        attempts=tuple(_attempt_view(a) for a in ctx.attempts),
        extra=_timing_extra(ctx),
        outcome=classify(ctx.status, ctx.error, ctx.attempts),
        decisions=decisions_json(ctx.decisions, ctx.attempts),
    )


def _attempt_view(attempt: Attempt) -> dict[str, object]:
    view: dict[str, object] = {
        "deployment": attempt.deployment,
        "outcome": attempt.outcome,
        "latency_ms": attempt.latency_ms,
    }
    if attempt.start_ms is not None:
        view["start_ms"] = attempt.start_ms
    if attempt.first_token_ms is not None:
        view["first_token_ms"] = attempt.first_token_ms
    return view


def tpot_seconds(ctx: RequestContext) -> float | None:
    """Time per output token after the first: (end-to-end − TTFT) / (output tokens − 1)."""
    if ctx.first_token_at is None or ctx.usage is None or ctx.usage.completion_tokens < 2:
        return None
    finished = ctx.finished_at or time.perf_counter()
    return (finished - ctx.first_token_at) / (ctx.usage.completion_tokens - 1)


def _timing_extra(ctx: RequestContext) -> dict[str, object]:
    extra: dict[str, object] = {}
    tpot = tpot_seconds(ctx)
    if tpot is not None:
        extra["tpot_ms"] = round(tpot * 1000.0, 3)
    gaps = ctx.token_gaps
    if gaps:
        ordered = sorted(gaps)
        extra["itl_ms"] = {
            "mean": round(sum(gaps) / len(gaps) * 1000.0, 3),
            "p50": round(ordered[len(ordered) // 2] * 1000.0, 3),
            "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000.0, 3),
            "max": round(ordered[-1] * 1000.0, 3),
        }
    if ctx.hedged:
        extra["hedged"] = True
    if ctx.tier is not None:
        extra["tier"] = ctx.tier
    return extra
