"""Streams that break after their first token go on elsewhere: over real loopback HTTP with the
openai SDK as the client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from interlock.routing.resume import continuation_body
from interlock.sim import SimConfig, SimServerThread
from tests.gateway_harness import running_gateway
from tests.routing.test_routing_live import config

MODELS = """  chat:
    routing: {strategy: round-robin}
    hedge: {enabled: false}
    deployments:
      - {provider: a, model: m}
      - {provider: b, model: m}
"""
ASK = [{"role": "user", "content": "tell me a long story"}]


@pytest.fixture
def second() -> Iterator[SimServerThread]:
    with SimServerThread(SimConfig(ttft_ms=1, tpot_ms=0.2, seed=8, name="second")) as server:
        yield server


def stream_text(client: openai.OpenAI, **extra: object) -> tuple[str, list[str], str | None]:
    """Stream one answer: its text, the chunk ids seen, and its finish reason."""
    text, ids, finish = [], [], None
    stream = client.chat.completions.create(model="chat", messages=ASK, stream=True, max_tokens=60, **extra)  # type: ignore[call-overload]
    for chunk in stream:
        ids.append(chunk.id)
        if chunk.choices:
            text.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
    return "".join(text), ids, finish


def broken_first(
    sim: SimServerThread, second: SimServerThread, tmp_path: Path, **faults: object
) -> list[str]:
    """Break every stream of ``sim`` as ``faults`` say, and stream twice through a gateway that
    round-robins over both: one of the two answers starts on the broken one."""
    sim.set_faults(**faults)
    texts: list[str] = []
    with running_gateway(config(tmp_path, {"a": sim.base_url, "b": second.base_url}, MODELS)) as gw:
        client = openai.OpenAI(base_url=gw.base_url, api_key=gw.master_key, max_retries=0)
        for _ in range(2):
            text, ids, finish = stream_text(client)
            assert finish == "length" or finish == "stop", "every stream ends with a finish reason"
            assert len(set(ids)) == 1, "a resumed stream keeps its id"
            texts.append(text)
    return texts


def test_a_stream_cut_mid_answer_resumes_on_the_other_deployment(
    sim: SimServerThread, second: SimServerThread, tmp_path: Path
) -> None:
    broken_first(sim, second, tmp_path, cut_after_tokens=5)
    assert sim.stats()["responses_cut"] >= 1
    # the continuation went to the healthy simulator with the text so far as the assistant's start
    assert second.stats()["requests_total"] >= 2


def test_a_stream_gone_silent_resumes_after_its_silence_limit(
    sim: SimServerThread, second: SimServerThread, tmp_path: Path
) -> None:
    # the first token comes at once, then each next one 30 s later: the stream has stalled
    texts = broken_first(sim, second, tmp_path, slow_stream_ms=30_000)
    assert all(texts)
    assert second.stats()["completed"] >= 2


def test_a_tool_call_stream_is_not_resumed(
    sim: SimServerThread, second: SimServerThread, tmp_path: Path
) -> None:
    sim.set_faults(cut_after_tokens=1)  # the arguments stop after "{"
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    with running_gateway(config(tmp_path, {"a": sim.base_url, "b": second.base_url}, MODELS)) as gw:
        client = openai.OpenAI(base_url=gw.base_url, api_key=gw.master_key, max_retries=0)
        outcomes = []
        for _ in range(2):
            try:
                stream_text(client, tools=tools, tool_choice="required")
                outcomes.append("ok")
            except openai.APIError as exc:
                outcomes.append(type(exc).__name__)
    # the stream that began on the cut simulator ends with an error event, as before: half a tool
    # call's arguments cannot be continued
    assert outcomes.count("ok") == 1


def test_the_continuation_asks_for_the_rest() -> None:
    body = {"model": "m", "messages": ASK, "max_tokens": 60, "stream": True}
    resumed = continuation_body(body, "Once upon", 3)
    assert resumed["messages"] == [*ASK, {"role": "assistant", "content": "Once upon"}]
    assert resumed["max_tokens"] == 57 and resumed["stream"] is True
    assert body["messages"] == ASK  # the original request is untouched
    assert (
        continuation_body({"messages": ASK, "max_completion_tokens": 2}, "x", 5)["max_completion_tokens"] == 1
    )


def test_a_stream_that_slows_to_a_crawl_resumes_on_the_other_deployment(tmp_path: Path) -> None:
    paced = SimConfig(ttft_ms=1, tpot_ms=5, seed=3)  # chunks 5 ms apart: read one by one
    with SimServerThread(paced) as slow, SimServerThread(paced.with_changes(seed=4)) as fine:
        providers = {"a": slow.base_url, "b": fine.base_url}
        with running_gateway(config(tmp_path, providers, MODELS)) as gw:
            client = openai.OpenAI(base_url=gw.base_url, api_key=gw.master_key, max_retries=0)
            for _ in range(8):  # both deployments' usual pace between chunks is learned
                stream_text(client)
            slow.set_faults(slow_stream_ms=100)  # then its chunks come 20x further apart
            before = fine.stats()["requests_total"]
            for _ in range(2):
                text, ids, finish = stream_text(client)
                assert text and finish in ("length", "stop") and len(set(ids)) == 1
        # the crawling stream was given up on the slow simulator and continued on the other
        assert slow.stats()["cancelled"] >= 1
        assert fine.stats()["requests_total"] >= before + 2
