"""Every request is recorded — tokens, cost from the price table, latency, TTFT, status — whether it
succeeded, failed, or was abandoned by its client."""

from __future__ import annotations

import asyncio
import time

import httpx
import openai
import pytest

from interlock.sim import SimServerThread
from interlock.store import RequestRecord, Store
from tests.gateway_harness import Gateway, slow_stream


def records(gateway: Gateway, count: int, timeout_s: float = 10.0) -> list[RequestRecord]:
    """The newest ``count`` request-log rows, read through a separate store connection."""

    async def read() -> list[RequestRecord]:
        store = await Store.open(gateway.runtime.settings.store, migrate=False)
        try:
            return await store.requests.query(limit=100)
        finally:
            await store.close()

    deadline = time.monotonic() + timeout_s
    rows: list[RequestRecord] = []
    while time.monotonic() < deadline:
        rows = asyncio.run(read())
        if len(rows) >= count:
            return rows
        time.sleep(0.1)
    raise AssertionError(f"expected {count} request records, found {len(rows)}")


def test_completion_is_recorded_with_tokens_and_cost(gateway: Gateway) -> None:
    key_id, key = gateway.create_key("accounted")
    client = gateway.openai(key)
    reply = client.chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": "count me"}]
    )
    usage = reply.parse().usage
    assert usage is not None
    (row,) = records(gateway, 1)
    assert row.request_id == reply.headers["x-request-id"]
    assert (row.key_id, row.model, row.status, row.stream, row.operation) == (
        key_id,
        "chat",
        200,
        False,
        "chat",
    )
    assert (
        row.deployment == "chat/sim-a/sim-small#0"
        and row.provider == "sim-a"
        and row.upstream_model == "sim-small"
    )
    assert (row.prompt_tokens, row.completion_tokens) == (usage.prompt_tokens, usage.completion_tokens)
    # the harness prices chat at $1 / $2 per million input / output tokens
    expected = (usage.prompt_tokens * 1.0 + usage.completion_tokens * 2.0) / 1e6
    assert abs(row.cost - expected) < 1e-12
    assert row.latency_ms >= row.overhead_ms >= 0
    assert row.error_kind is None
    assert [a["outcome"] for a in row.attempts] == ["ok"]


def test_stream_is_recorded_with_ttft_and_usage(gateway: Gateway) -> None:
    client = gateway.openai()
    chunks = list(
        client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "s"}], stream=True)
    )
    assert chunks
    (row,) = records(gateway, 1)
    assert row.stream and row.status == 200 and row.key_id == "master"
    assert row.ttft_ms is not None and 0 < row.ttft_ms <= row.latency_ms
    assert row.completion_tokens > 0 and row.cost > 0


def test_errors_are_recorded_with_their_kind(gateway: Gateway, sim: SimServerThread) -> None:
    client = gateway.openai()
    httpx.post(sim.url + "/sim/faults", json={"error_rate": 1.0, "error_status": 503})
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="unknown", messages=[{"role": "user", "content": "x"}])
    rows = {r.model: r for r in records(gateway, 2)}
    # one deployment, retried until the attempts ran out: a 503 naming what was tried
    assert rows["chat"].status == 503 and rows["chat"].error_kind == "service_unavailable"
    assert [a["outcome"] for a in rows["chat"].attempts] == ["upstream_error"] * 4
    assert rows["unknown"].status == 404 and rows["unknown"].error_kind == "model_not_found"
    assert rows["unknown"].deployment is None and rows["unknown"].cost == 0


def test_abandoned_stream_is_recorded_as_client_closed(gateway: Gateway, sim: SimServerThread) -> None:
    with slow_stream(gateway, sim.url) as lines:
        next(lines)
    (row,) = records(gateway, 1)
    assert row.status == 499 and row.stream


def test_embeddings_are_recorded(gateway: Gateway) -> None:
    client = gateway.openai()
    result = client.embeddings.create(model="embed", input=["a b c", "d e"])
    (row,) = records(gateway, 1)
    assert row.operation == "embeddings" and row.prompt_tokens == result.usage.prompt_tokens
    assert abs(row.cost - result.usage.prompt_tokens * 0.5 / 1e6) < 1e-12
