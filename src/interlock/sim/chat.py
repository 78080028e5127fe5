"""``POST /v1/chat/completions``: pace the planned choices out as one response or as a stream."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import Mapping
from typing import Any

import orjson

from interlock.sim.engine import Engine, pause
from interlock.sim.exchange import Exchange
from interlock.sim.faults import Faults
from interlock.sim.generate import ChoicePlan, plan_choices
from interlock.sim.inference import InferenceRoute
from interlock.sim.requests import ChatRequest, check_context, parse_chat
from interlock.sim.responses import ChunkEncoder, DeltaCache, chat_completion, usage

__all__ = ["ChatRoute"]

# A non-streaming answer sleeps through its decode in slices of this many tokens, so the batch
# penalty follows the batch as it changes without a timer per token.
_DECODE_SLICE = 16


class ChatRoute(InferenceRoute[ChatRequest]):
    """The chat completions endpoint of the simulator."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self._fingerprint = "fp_" + engine.config.name
        # Unique ids without a random call per request: a per-process prefix and a counter.
        self._id_prefix = "chatcmpl-" + secrets.token_hex(6)
        self._ids = itertools.count(1)
        self._deltas = DeltaCache()

    def parse(self, body: bytes) -> ChatRequest:
        """Validate the body and the prompt's length against the context window."""
        config = self.engine.config
        request = parse_chat(body, config.default_max_tokens)
        check_context(len(request.prompt_tokens), request, config.context_window)
        return request

    def describe(self, request: ChatRequest) -> tuple[str, bool]:
        """The request's model and whether it streams."""
        return request.model, request.stream

    async def answer(self, exchange: Exchange, request: ChatRequest, faults: Faults | None) -> None:
        """Prefill (minus what the prefix cache holds), then decode and send."""
        engine = self.engine
        plans = plan_choices(request, engine.config)
        prompt_tokens = len(request.prompt_tokens)
        cached = engine.admit_prompt(request.prompt_tokens)
        slowdown = faults.slowdown if faults is not None else 1.0
        await pause(engine.prefill_seconds(prompt_tokens - cached) * slowdown)
        completion_tokens = sum(len(plan.pieces) for plan in plans)
        stats = engine.stats
        stats.prompt_tokens += prompt_tokens
        stats.completion_tokens += completion_tokens
        totals = usage(prompt_tokens, completion_tokens, cached)
        response_id = f"{self._id_prefix}{next(self._ids):x}"
        if request.stream:
            await self._stream(exchange, request, plans, totals, response_id, faults)
        else:
            await self._whole(exchange, request, plans, totals, response_id, faults)

    async def _whole(
        self,
        exchange: Exchange,
        request: ChatRequest,
        plans: list[ChoicePlan],
        totals: Mapping[str, Any],
        response_id: str,
        faults: Faults | None,
    ) -> None:
        engine = self.engine
        stats = engine.stats
        sequences = len(plans)
        slowdown = faults.slowdown if faults is not None else 1.0
        stats.decode(sequences)
        try:
            # The first token came with prefill; the rest take one decode step each.
            remaining = max(len(plan.pieces) for plan in plans) - 1
            while remaining > 0 and engine.config.tpot_ms > 0:
                step = min(remaining, _DECODE_SLICE)
                await asyncio.sleep(engine.step_seconds() * step * slowdown)
                remaining -= step
        finally:
            stats.decode(-sequences)
        choices = [
            (None if plan.tool_call else plan.text, plan.tool_call, plan.finish_reason) for plan in plans
        ]
        body = orjson.dumps(
            chat_completion(
                id=response_id,
                created=int(time.time()),
                model=request.model,
                fingerprint=self._fingerprint,
                choices=choices,
                usage=totals,
            )
        )
        cut = faults.cut_after_tokens if faults is not None else None
        if cut is not None and cut <= totals["completion_tokens"]:
            stats.responses_cut += 1
            body = body[: len(body) // 2]
        else:
            stats.completed += 1
        await exchange.respond(200, body)

    async def _stream(
        self,
        exchange: Exchange,
        request: ChatRequest,
        plans: list[ChoicePlan],
        totals: Mapping[str, Any],
        response_id: str,
        faults: Faults | None,
    ) -> None:
        engine = self.engine
        stats = engine.stats
        encoder = ChunkEncoder(
            id=response_id,
            created=int(time.time()),
            model=request.model,
            fingerprint=self._fingerprint,
            include_usage=request.include_usage,
            deltas=self._deltas,
        )
        per_choice = [
            encoder.pieces(i, plan.pieces, arguments=plan.tool_call is not None)
            for i, plan in enumerate(plans)
        ]
        # Token chunks in the order an engine emits them: one token of every unfinished choice per step.
        ordered = (
            per_choice[0]
            if len(plans) == 1
            else [c for step in itertools.zip_longest(*per_choice) for c in step if c]
        )
        cut = faults.cut_after_tokens if faults is not None else None
        cutting = cut is not None and cut <= len(ordered)
        ordered = ordered[:cut] if cutting else ordered
        slow = faults.slow_stream_ms / 1000 if faults is not None else 0.0
        slowdown = faults.slowdown if faults is not None else 1.0
        # Events due at the same moment go out in one write.
        events = [encoder.role(i, plan.tool_call) for i, plan in enumerate(plans)]
        await exchange.start_stream()
        stats.decode(len(plans))
        try:
            if engine.config.tpot_ms > 0 or slow > 0:
                lengths = [len(plan.pieces) for plan in plans]
                await self._pace(exchange, events, ordered, lengths, slow, slowdown)
            else:
                events.extend(ordered)
            if cutting:
                await self._cut(exchange, events)
                return
            events.extend(encoder.finish(i, plan.finish_reason) for i, plan in enumerate(plans))
            if request.include_usage:
                events.append(encoder.usage(totals))
            events.append(encoder.done())
            await exchange.write(b"".join(events), last=True)
            stats.completed += 1
        finally:
            stats.decode(-len(plans))

    async def _pace(
        self,
        exchange: Exchange,
        events: list[bytes],
        ordered: list[bytes],
        lengths: list[int],
        slow: float,
        slowdown: float,
    ) -> None:
        """Send ``ordered`` a decode step at a time, leaving the last step in ``events`` for the caller."""
        sent = 0
        step = 0
        while sent < len(ordered):
            if step:
                await exchange.write(b"".join(events))
                events.clear()
                await asyncio.sleep(self.engine.step_seconds() * slowdown + slow)
            size = sum(1 for length in lengths if length > step)
            events.extend(ordered[sent : sent + size])
            sent += size
            step += 1

    async def _cut(self, exchange: Exchange, events: list[bytes]) -> None:
        if events:
            await exchange.write(b"".join(events))
        self.engine.stats.responses_cut += 1
        await exchange.drop(reset=False)
