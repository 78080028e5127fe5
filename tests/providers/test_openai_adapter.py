"""The OpenAI adapter's stream batching over a real socket: one upstream read becomes one batch,
except that the first token leaves on its own, and chunks read before a failure still arrive."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from interlock.core.context import Chunks
from interlock.core.errors import UpstreamStreamBroken
from interlock.providers.openai import OpenAIProvider
from tests.providers.raw_upstream import Upstream, chunk, sse_head, upstream


def event(delta: dict[str, object], **extra: object) -> bytes:
    body = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}], **extra}
    return b"data: " + orjson.dumps(body) + b"\n\n"


ROLE = event({"role": "assistant", "content": ""})
TOKENS = [event({"content": word}) for word in ("one", " two", " three")]
USAGE = b'data: {"object": "chat.completion.chunk", "choices": [], "usage": {"prompt_tokens": 3}}\n\n'


async def collect(reads: list[bytes]) -> tuple[list[Chunks], BaseException | None]:
    async def answer(box: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await box.read_request(reader)
        writer.write(sse_head())
        for data in reads:
            writer.write(chunk(data))
            await writer.drain()
            await asyncio.sleep(0.02)
        writer.write(b"0\r\n\r\n")
        await reader.read()

    batches: list[Chunks] = []
    error: BaseException | None = None
    async with upstream(answer) as up:
        provider = OpenAIProvider("up", f"http://127.0.0.1:{up.port}/v1")
        try:
            async for batch in provider.chat_stream({"model": "m", "messages": []}):
                batches.append(batch)
        except UpstreamStreamBroken as exc:
            error = exc
        await provider.aclose()
    return batches, error


def texts(batches: list[Chunks]) -> list[list[str]]:
    return [
        [c["choices"][0]["delta"].get("content", "") if c["choices"] else "usage" for c in b] for b in batches
    ]


async def test_one_read_is_one_batch_but_the_first_token_leaves_first() -> None:
    batches, error = await collect([ROLE + b"".join(TOKENS), USAGE + b"data: [DONE]\n\n"])
    assert error is None
    assert texts(batches) == [["", "one"], [" two", " three"], ["usage"]]


async def test_chunks_before_a_failure_in_the_same_read_are_delivered() -> None:
    failure = b'data: {"error": {"message": "engine crashed"}}\n\n'
    batches, error = await collect([ROLE + TOKENS[0], TOKENS[1] + TOKENS[2] + failure])
    assert texts(batches) == [["", "one"], [" two", " three"]]
    assert error is not None and "engine crashed" in str(error)


@pytest.mark.parametrize("ending", [b"", b"data: [DONE]\n\n"], ids=["no-done", "done"])
async def test_a_stream_without_done_is_broken(ending: bytes) -> None:
    batches, error = await collect([ROLE + TOKENS[0] + ending])
    assert texts(batches) == [["", "one"]]
    assert (error is None) == bool(ending)
