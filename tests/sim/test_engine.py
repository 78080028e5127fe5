"""Engine behaviour seen from outside: prefix caching, queueing, cancellation and the counters."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import openai

from interlock.sim import SimServerThread

from .conftest import StartSim
from .helpers import TLS, chat_body, post, sdk, stats, wait_for_stats

LONG_PROMPT = " ".join(
    f"Section {i} of the operating manual covers switch {i * 7} and signal {i * 3}." for i in range(40)
)


async def wait_for_stats_async(http: httpx.AsyncClient, check: Any) -> dict[str, Any]:
    """Poll ``/sim/stats`` from async code until ``check`` holds (or 5 s pass)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while True:
        current: dict[str, Any] = (await http.get("/sim/stats")).json()
        if check(current) or loop.time() > deadline:
            return current
        await asyncio.sleep(0.01)


def test_repeated_long_prompt_hits_prefix_cache(sim: SimServerThread, client: openai.OpenAI) -> None:
    def cached(prompt: str) -> tuple[int, int]:
        reply = client.chat.completions.create(model="m", messages=[{"role": "user", "content": prompt}])
        details = reply.usage.prompt_tokens_details
        assert details is not None and details.cached_tokens is not None
        return details.cached_tokens, reply.usage.prompt_tokens

    first, prompt_tokens = cached(LONG_PROMPT)
    assert first == 0
    second, _ = cached(LONG_PROMPT)
    assert prompt_tokens - sim.config.prefix_block_size <= second < prompt_tokens
    # A prompt that shares only the beginning reuses the blocks of that beginning.
    shared, _ = cached(LONG_PROMPT[: len(LONG_PROMPT) // 2] + " Something else entirely.")
    assert 0 < shared < second
    counters = stats(sim)
    assert counters["prefix_cache_hit_tokens"] == second + shared
    assert counters["prefix_cache_blocks"] > 0
    post(sim.url + "/sim/prefix-cache/reset")
    assert cached(LONG_PROMPT)[0] == 0


def test_streaming_client_disconnect_is_counted_as_cancelled(start_sim: StartSim) -> None:
    sim = start_sim(tpot_ms=20, output_tokens_min=200, output_tokens_max=200, default_max_tokens=200)
    with (
        httpx.Client(verify=TLS, base_url=sim.url) as http,
        http.stream("POST", "/v1/chat/completions", json=chat_body(stream=True)) as response,
    ):
        lines = response.iter_lines()
        received = [next(lines) for _ in range(4)]
    # Leaving the block closed the connection mid-stream.
    assert received[0].startswith("data: ")
    after = wait_for_stats(sim, lambda s: s["cancelled"] == 1 and s["in_flight"] == 0)
    assert after["cancelled"] == 1
    assert after["completed"] == 0
    assert after["in_flight"] == 0 and after["batch_size"] == 0


async def test_requests_beyond_concurrency_queue_in_order(start_sim: StartSim) -> None:
    sim = start_sim(max_concurrency=1)
    async with httpx.AsyncClient(verify=TLS, base_url=sim.url, timeout=10) as http:
        await http.post("/sim/faults", json={"hang": True})
        first = asyncio.create_task(http.post("/v1/chat/completions", json=chat_body("first")))
        await wait_for_stats_async(http, lambda s: s["hangs"] == 1)
        rest = [
            asyncio.create_task(http.post("/v1/chat/completions", json=chat_body(f"r{i}"))) for i in range(2)
        ]
        held = await wait_for_stats_async(http, lambda s: s["queued"] == 2)
        assert held["queued"] == 2 and held["in_flight"] == 3 and held["hangs"] == 1
        await http.delete("/sim/faults")
        responses = await asyncio.gather(first, *rest)
        assert [r.status_code for r in responses] == [200, 200, 200]
        final = (await http.get("/sim/stats")).json()
    assert final["completed"] == 3 and final["queued"] == 0 and final["peak_queued"] == 2


async def test_full_queue_is_refused_with_retry_after(start_sim: StartSim) -> None:
    sim = start_sim(max_concurrency=1, max_queue=1, queue_full_status=429, queue_full_retry_after_s=3)
    async with httpx.AsyncClient(verify=TLS, base_url=sim.url, timeout=10) as http:
        await http.post("/sim/faults", json={"hang": True})
        holder = asyncio.create_task(http.post("/v1/chat/completions", json=chat_body()))
        await wait_for_stats_async(http, lambda s: s["hangs"] == 1)
        waiter = asyncio.create_task(http.post("/v1/chat/completions", json=chat_body()))
        await wait_for_stats_async(http, lambda s: s["queued"] == 1)
        refused = await http.post("/v1/chat/completions", json=chat_body())
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "3"
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"
        await http.delete("/sim/faults")
        assert [r.status_code for r in await asyncio.gather(holder, waiter)] == [200, 200]
        assert (await http.get("/sim/stats")).json()["rejected"] == 1


async def test_queued_request_cancelled_by_client_frees_its_place(start_sim: StartSim) -> None:
    sim = start_sim(max_concurrency=1)
    async with httpx.AsyncClient(verify=TLS, base_url=sim.url, timeout=10) as http:
        await http.post("/sim/faults", json={"hang": True})
        holder = asyncio.create_task(http.post("/v1/chat/completions", json=chat_body()))
        await wait_for_stats_async(http, lambda s: s["hangs"] == 1)
        async with httpx.AsyncClient(verify=TLS, base_url=sim.url, timeout=0.2) as impatient:
            try:
                await impatient.post("/v1/chat/completions", json=chat_body())
                raise AssertionError("a queued request should not have been answered")
            except httpx.ReadTimeout:
                pass
        counters = await wait_for_stats_async(http, lambda s: s["cancelled"] == 1 and s["queued"] == 0)
        assert counters["cancelled"] == 1 and counters["queued"] == 0
        await http.delete("/sim/faults")
        assert (await holder).status_code == 200


def test_batch_size_and_stats_reset(start_sim: StartSim) -> None:
    sim = start_sim(tpot_ms=1)
    with sdk(sim.base_url) as client:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], n=4)
    counters = stats(sim)
    assert counters["peak_batch_size"] == 4 and counters["batch_size"] == 0
    assert counters["requests_total"] == 1 and counters["completion_tokens"] > 0
    reset = post(sim.url + "/sim/stats/reset").json()
    assert reset["requests_total"] == 0 and reset["peak_batch_size"] == 0 and reset["completion_tokens"] == 0


def test_timed_engine_streams_the_same_text(start_sim: StartSim) -> None:
    sim = start_sim(ttft_ms=5, prefill_ms_per_token=0.01, tpot_ms=1)
    with sdk(sim.base_url) as client:
        whole = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], seed=1
        )
        parts = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], seed=1, stream=True
        )
        text = "".join(c.choices[0].delta.content or "" for c in parts if c.choices)
    assert text == whole.choices[0].message.content
    assert stats(sim)["completed"] == 2
