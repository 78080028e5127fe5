"""The ``trace`` stage opens the request's trace before the stages under it run, and ``account``
ends it once the request is recorded — for a stream, at the stream's end, with no second wrapper."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from interlock.core.context import Chunks, Reply, RequestContext
from interlock.core.tracing import Tracer
from interlock.gateway.chain import Next, build_chain
from interlock.gateway.stages.account import AccountStage
from interlock.gateway.stages.trace import TraceStage
from interlock.store import RequestRecord


class Journal(Tracer):
    """A tracer that writes down when its hooks are called."""

    def __init__(self, events: list[str]) -> None:
        self.events = events

    def start_request(self, ctx: RequestContext) -> None:
        self.events.append("start")

    def finish_request(self, ctx: RequestContext) -> None:
        self.events.append(f"finish {ctx.status}")


def context(stream: bool) -> RequestContext:
    return RequestContext(request_id="req_1", operation="chat", model="m", body={}, stream=stream)


async def run(stream: bool) -> list[str]:
    events: list[str] = []
    trace = TraceStage(Journal(events))

    def recorded(ctx: RequestContext, record: RequestRecord) -> None:
        events.append("recorded")

    async def chunks() -> AsyncIterator[Chunks]:
        events.append("chunk")
        yield [{"choices": [{"delta": {"content": "hi"}}]}]

    async def answer(ctx: RequestContext, call_next: Next) -> Reply:
        events.append("answer")
        return Reply(stream=chunks()) if stream else Reply(body={"choices": []})

    chain = build_chain([AccountStage([recorded, trace.recorded]), trace, answer])
    reply = await chain(context(stream))
    if reply.stream is not None:
        async for _ in reply.stream:
            pass
    await asyncio.sleep(0)  # the record is made in a callback right after the reply leaves
    return events


def test_a_complete_reply_is_traced_from_entry_to_record() -> None:
    assert asyncio.run(run(stream=False)) == ["start", "answer", "recorded", "finish 200"]


def test_a_stream_is_traced_until_its_end() -> None:
    assert asyncio.run(run(stream=True)) == ["start", "answer", "chunk", "recorded", "finish 200"]
