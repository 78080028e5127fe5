"""Budgets and rate limits through the real gateway: the SDKs see clear 429s and 400s, in their dialect.

Real loopback HTTP to the simulator, the official SDKs as clients, counters in process memory or
(the multi-instance test) in the real Redis.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from interlock.sim import SimServerThread
from tests.gateway_harness import MASTER_KEY, Gateway, running_gateway
from tests.redis_server import REDIS_HOST, REDIS_PORT, find_redis

HELLO = [{"role": "user", "content": "hello there"}]

BASE = """
master_key: {master}
store: sqlite:///{tmp}/interlock.db
providers:
  sim: {{kind: openai, base_url: {url}}}
models:
  chat: {{deployments: [{{provider: sim, model: sim-small, price: {{input: 100.0, output: 200.0}}}}]}}
  chat-large: {{deployments: [{{provider: sim, model: sim-large, price: {{input: 500.0, output: 1500.0}}}}]}}
tiers:
  auto: {{economy: chat, standard: chat, premium: chat-large}}
{extra}
"""


def config(sim: SimServerThread, tmp: Path, extra: str) -> str:
    return BASE.format(master=MASTER_KEY, tmp=tmp, url=sim.base_url, extra=extra)


@pytest.fixture
def make(sim: SimServerThread, tmp_path: Path) -> Iterator[Any]:
    stack: list[Any] = []

    def start(extra: str) -> Gateway:
        manager = running_gateway(config(sim, tmp_path, extra))
        stack.append(manager)
        return manager.__enter__()

    yield start
    for manager in reversed(stack):
        manager.__exit__(None, None, None)


def usage(gateway: Gateway, **subject: str) -> list[dict[str, Any]]:
    """``GET /admin/budgets`` usage for ``subject``, once no reservation is left in flight (the
    settlements run in the background, after each answer)."""
    with gateway.admin() as admin:
        for _ in range(200):
            found: list[dict[str, Any]] = admin.get("/admin/budgets", params=subject).json()["usage"]
            if all(line["reserved_usd"] == 0 for line in found):
                return found
            time.sleep(0.02)
    raise AssertionError(f"reservations still held: {found}")


def test_a_spent_budget_is_a_clear_429_and_spend_never_passes_it(make: Any) -> None:
    gateway = make("budgets: {rules: [{name: daily, scope: key, period: day, limit_usd: 0.05}]}")
    key_id, key = gateway.create_key("budgeted")
    client = gateway.openai(key)
    answered = 0
    with pytest.raises(openai.RateLimitError) as caught:
        for _ in range(200):
            client.chat.completions.create(model="chat", messages=HELLO, max_tokens=20)
            answered += 1
    assert answered > 3
    error = caught.value
    assert error.code == "budget_exceeded" and error.type == "insufficient_quota"
    assert "Budget 'daily' (key" in error.message and "is spent" in error.message
    assert int(error.response.headers["retry-after"]) >= 1
    (line,) = usage(gateway, key_id=key_id)
    assert line["budget"] == "daily" and line["subject"] == key_id
    assert 0 < line["settled_usd"] <= 0.05
    # another key has its own budget
    _, other = gateway.create_key("other")
    assert gateway.openai(other).chat.completions.create(model="chat", messages=HELLO, max_tokens=5)


def test_a_request_that_can_never_fit_is_refused_up_front_naming_max_tokens(make: Any) -> None:
    gateway = make(
        "budgets: {key_max_request_usd: {}, max_request_usd: 5,"
        " rules: [{name: small, scope: key, period: day, limit_usd: 1.0}]}"
    )
    _, key = gateway.create_key("k")
    client = gateway.openai(key)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="chat", messages=HELLO, max_tokens=100_000)
    assert caught.value.body["param"] == "max_tokens"  # type: ignore[index]
    assert "over this key's limit of $5.00 per request" in caught.value.message
    with pytest.raises(openai.BadRequestError, match="more than budget 'small' allows in a whole day"):
        gateway.openai(key).chat.completions.create(model="chat-large", messages=HELLO, max_tokens=900)
    assert client.chat.completions.create(model="chat", messages=HELLO, max_tokens=10).choices


def test_rate_limits_answer_with_openai_headers_and_retry_after(make: Any) -> None:
    gateway = make("limits: {rules: [{scope: key, requests_per_min: 3, tokens_per_min: 100000}]}")
    _, key = gateway.create_key("limited")
    client = gateway.openai(key)
    remaining = []
    for _ in range(3):
        raw = client.chat.completions.with_raw_response.create(model="chat", messages=HELLO, max_tokens=5)
        assert raw.headers["x-ratelimit-limit-requests"] == "3"
        assert raw.headers["x-ratelimit-limit-tokens"] == "100000"
        remaining.append(int(raw.headers["x-ratelimit-remaining-requests"]))
    assert remaining == [2, 1, 0]
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="chat", messages=HELLO, max_tokens=5)
    headers = caught.value.response.headers
    assert caught.value.code == "rate_limit_exceeded"
    assert "Rate limit 'key:*' reached (requests per minute for key" in caught.value.message
    assert int(headers["retry-after"]) >= 1 and headers["x-ratelimit-remaining-requests"] == "0"


def test_a_concurrency_limit_refuses_the_second_request_in_flight(make: Any, sim: SimServerThread) -> None:
    gateway = make("limits: {rules: [{scope: key, concurrent: 1}]}")
    _, key = gateway.create_key("one-at-a-time")
    httpx.post(sim.url + "/sim/faults", json={"latency_ms": 600})
    headers = {"Authorization": f"Bearer {key}"}
    body = {"model": "chat", "messages": HELLO, "max_tokens": 5}
    with ThreadPoolExecutor(2) as pool:
        url = gateway.base_url + "/chat/completions"
        slow = pool.submit(httpx.post, url, json=body, headers=headers, timeout=10)
        time.sleep(0.2)
        second = httpx.post(gateway.base_url + "/chat/completions", json=body, headers=headers, timeout=10)
        assert second.status_code == 429
        assert "concurrent requests for key" in second.json()["error"]["message"]
        assert slow.result().status_code == 200
    httpx.post(sim.url + "/sim/faults", json={"latency_ms": 0})
    assert httpx.post(gateway.base_url + "/chat/completions", json=body, headers=headers).status_code == 200


def test_throttle_lets_a_trickle_through_past_the_limit(make: Any) -> None:
    gateway = make(
        "budgets: {throttle_per_min: 2,"
        " rules: [{name: soft, scope: key, period: day, limit_usd: 0.01, action: throttle}]}"
    )
    _, key = gateway.create_key("throttled")
    client = gateway.openai(key)
    statuses = []
    for _ in range(12):
        try:
            client.chat.completions.create(model="chat", messages=HELLO, max_tokens=20)
            statuses.append(200)
        except openai.RateLimitError as err:
            assert err.code == "budget_exceeded"
            statuses.append(429)
    first_refusal = statuses.index(429)
    # the budget ran out after a few requests; two more passed; then every request was refused
    assert 200 in statuses[:first_refusal]
    assert statuses[first_refusal:].count(200) == 0
    assert first_refusal >= 2


def test_downgrade_sends_the_request_one_tier_down_when_the_budget_is_spent(make: Any) -> None:
    gateway = make(
        "budgets: {rules: [{name: premium-cap, scope: key, model: chat-large, period: day,"
        " limit_usd: 0.2, action: downgrade}]}"
    )
    _, key = gateway.create_key("downgraded")
    client = gateway.openai(key)
    served = []
    for _ in range(30):
        raw = client.chat.completions.with_raw_response.create(
            model="chat-large", messages=HELLO, max_tokens=10
        )
        served.append(raw.headers["x-interlock-deployment"].split("/")[0])
    assert served[0] == "chat-large" and served[-1] == "chat"
    assert served.index("chat") > 1
    raw = client.chat.completions.with_raw_response.create(model="chat-large", messages=HELLO, max_tokens=10)
    assert raw.headers["x-interlock-tier"].startswith("standard; model=chat")


def test_the_anthropic_dialect_gets_its_own_error_shape(make: Any) -> None:
    gateway = make("limits: {rules: [{scope: key, requests_per_min: 1}]}")
    _, key = gateway.create_key("anthropic")
    client = gateway.anthropic(key)
    client.messages.create(model="chat", max_tokens=5, messages=HELLO)
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model="chat", max_tokens=5, messages=HELLO)
    body = caught.value.response.json()
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    assert "Rate limit" in body["error"]["message"]


REDIS_SKIP = find_redis()


@pytest.mark.skipif(REDIS_SKIP is not None, reason=REDIS_SKIP or "")
def test_two_gateways_on_one_redis_share_one_budget_exactly(sim: SimServerThread, tmp_path: Path) -> None:
    prefix = f"interlock-test:{secrets.token_hex(4)}:"
    # both gateways and 32 client threads share this test's one interpreter: a Redis answer may
    # wait on the GIL for longer than the default 0.25 s, which would rightly count as Redis being
    # unreachable (tests/governance/test_fallback.py covers that); here the counting is the subject
    extra = (
        f"redis: {{url: 'redis://{REDIS_HOST}:{REDIS_PORT}/0', prefix: '{prefix}', timeout_s: 5}}\n"
        "budgets: {rules: [{name: shared, scope: global, period: day, limit_usd: 0.2}]}"
    )
    text = config(sim, tmp_path, extra)
    with running_gateway(text) as one, running_gateway(text.replace("interlock.db", "two.db")) as two:
        clients = [one.openai(MASTER_KEY), two.openai(MASTER_KEY)]

        def call(index: int) -> int:
            try:
                clients[index % 2].chat.completions.create(model="chat", messages=HELLO, max_tokens=20)
                return 200
            except openai.RateLimitError as err:
                assert err.code == "budget_exceeded"
                return 429

        with ThreadPoolExecutor(32) as pool:
            statuses = list(pool.map(call, range(400)))
        assert statuses.count(200) > 10 and statuses.count(429) > 10
        (line,) = usage(one)
        with one.admin() as admin:
            shared = admin.get("/admin/budgets").json()["shared_state"]
        assert shared == {"backend": "redis", "degraded": False}
        assert line["budget"] == "shared" and 0.1 < line["settled_usd"] <= 0.2, (line, statuses.count(200))
        assert usage(two) == [line]  # the other instance reads the same counters
