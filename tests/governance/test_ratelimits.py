"""The rate limiter: one atomic check of every applicable limit, retry-after, OpenAI's headers."""

from __future__ import annotations

import pytest

from interlock.core.context import Principal
from interlock.governance.counters import Counters
from interlock.governance.money import usd_to_micros
from interlock.governance.rate_headers import format_duration
from interlock.governance.ratelimits import Admitted, Limited, RateLimit, RateLimiter, retry_after_header
from interlock.governance.scopes import Scope

ALICE = Principal(key_id="k-alice", name="alice", user_id="alice", team_id="search", org_id="acme")
BOB = Principal(key_id="k-bob", name="bob", user_id="bob", team_id="search", org_id="acme")
NOW = 1_717_000_000.0

PER_KEY = RateLimit("per-key", Scope("key"), requests_per_min=3, tokens_per_min=10_000)
TEAM = RateLimit("team", Scope("team", "search"), requests_per_min=100, tokens_per_min=1000, concurrent=2)
TEAM_GPT = RateLimit("team-gpt", Scope("team", "search", "gpt-4o"), requests_per_min=2)
COST = RateLimit("cost", Scope("org", "acme"), cost_per_min=usd_to_micros(1))


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def limiter(counters: Counters, limits: list[RateLimit], clock: Clock | None = None) -> RateLimiter:
    return RateLimiter(limits, counters, lease_ttl_s=30, clock=clock or Clock())


def test_levels_include_stricter_model_limits() -> None:
    rl = RateLimiter([PER_KEY, TEAM, TEAM_GPT], counters=None)  # type: ignore[arg-type]
    assert {(lv.limit.name, lv.subject) for lv in rl.levels(ALICE, "gpt-4o")} == {
        ("per-key", "k-alice"),
        ("team", "search"),
        ("team-gpt", "search"),
    }
    assert {lv.limit.name for lv in rl.levels(ALICE, "mini")} == {"per-key", "team"}


async def test_requests_per_minute_refuse_with_retry_after_and_headers(counters: Counters) -> None:
    rl = limiter(counters, [PER_KEY])
    levels = rl.levels(ALICE, "m")
    answers = [await rl.acquire(levels, tokens=100) for _ in range(4)]
    assert [type(a) for a in answers] == [Admitted, Admitted, Admitted, Limited]
    assert answers[0].headers.as_openai() == {
        "x-ratelimit-limit-requests": "3",
        "x-ratelimit-remaining-requests": "2",
        "x-ratelimit-reset-requests": "20s",
        "x-ratelimit-limit-tokens": "10000",
        "x-ratelimit-remaining-tokens": "9900",
        "x-ratelimit-reset-tokens": "600ms",
    }
    refused = answers[3]
    assert isinstance(refused, Limited)
    assert (refused.limit, refused.subject, refused.kind) == (PER_KEY, "k-alice", "requests")
    assert refused.retry_after_s == 20.0 and retry_after_header(refused) == "20"
    assert refused.headers.as_openai()["x-ratelimit-remaining-requests"] == "0"
    # another key has buckets of its own
    assert isinstance(await rl.acquire(rl.levels(BOB, "m"), tokens=100), Admitted)


async def test_the_tightest_limit_refuses_and_nothing_is_taken(counters: Counters) -> None:
    rl = limiter(counters, [PER_KEY, TEAM_GPT])
    levels = rl.levels(ALICE, "gpt-4o")
    for _ in range(2):
        assert isinstance(await rl.acquire(levels, tokens=10), Admitted)
    refused = await rl.acquire(levels, tokens=10)
    assert isinstance(refused, Limited) and refused.limit == TEAM_GPT
    # the key's own bucket was not charged for the refused request: one request left there
    other_model = await rl.acquire(rl.levels(ALICE, "mini"), tokens=10)
    assert isinstance(other_model, Admitted)
    assert other_model.headers.as_openai()["x-ratelimit-remaining-requests"] == "0"


async def test_tokens_are_reserved_then_corrected(counters: Counters) -> None:
    rl = limiter(counters, [TEAM])
    levels = rl.levels(ALICE, "m")
    first = await rl.acquire(levels, tokens=600)
    assert isinstance(first, Admitted)
    refused = await rl.acquire(levels, tokens=600)
    assert isinstance(refused, Limited) and refused.kind == "tokens" and refused.retry_after_s == 12.0
    await rl.settle(first.ticket, tokens=150)  # the request used far fewer than estimated
    second = await rl.acquire(levels, tokens=600)
    assert isinstance(second, Admitted)
    assert second.headers.as_openai()["x-ratelimit-remaining-tokens"] == "250"


async def test_concurrency_slots_are_freed_by_settle_and_release(counters: Counters) -> None:
    rl = limiter(counters, [TEAM])
    levels = rl.levels(ALICE, "m")
    a, b = await rl.acquire(levels, tokens=1), await rl.acquire(levels, tokens=1)
    assert isinstance(a, Admitted) and isinstance(b, Admitted)
    refused = await rl.acquire(levels, tokens=1)
    assert isinstance(refused, Limited) and refused.kind == "concurrent" and refused.retry_after_s == 1.0
    await rl.settle(a.ticket, tokens=1)
    c = await rl.acquire(levels, tokens=1)
    assert isinstance(c, Admitted)
    await rl.release(b.ticket)
    assert isinstance(await rl.acquire(levels, tokens=1), Admitted)


async def test_a_lease_of_a_crashed_request_lapses(counters: Counters) -> None:
    clock = Clock()
    rl = limiter(counters, [TEAM], clock)
    levels = rl.levels(ALICE, "m")
    assert isinstance(await rl.acquire(levels, tokens=1), Admitted)
    assert isinstance(await rl.acquire(levels, tokens=1), Admitted)
    assert isinstance(await rl.acquire(levels, tokens=1), Limited)
    clock.now += 30  # the lease TTL: nobody released them
    assert isinstance(await rl.acquire(levels, tokens=1), Admitted)


async def test_cost_per_minute(counters: Counters) -> None:
    rl = limiter(counters, [COST])
    levels = rl.levels(ALICE, "m")
    first = await rl.acquire(levels, tokens=0, cost=usd_to_micros(0.8))
    assert isinstance(first, Admitted)
    refused = await rl.acquire(levels, tokens=0, cost=usd_to_micros(0.3))
    assert isinstance(refused, Limited) and refused.kind == "cost"
    await rl.settle(first.ticket, tokens=0, cost=usd_to_micros(0.5))
    assert isinstance(await rl.acquire(levels, tokens=0, cost=usd_to_micros(0.3)), Admitted)


async def test_a_request_larger_than_a_whole_minute_can_never_fit(counters: Counters) -> None:
    rl = limiter(counters, [TEAM])
    refused = await rl.acquire(rl.levels(ALICE, "m"), tokens=1001)
    assert isinstance(refused, Limited) and refused.kind == "tokens" and refused.retry_after_s is None
    assert retry_after_header(refused) is None
    assert isinstance(await rl.acquire(rl.levels(ALICE, "m"), tokens=1000), Admitted)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.02, "20ms"),
        (0, "0ms"),
        (1, "1s"),
        (1.5, "1.5s"),
        (360, "6m0s"),
        (59.999, "59.999s"),
        (3723, "1h2m3s"),
    ],
)
def test_reset_durations_are_written_as_openai_does(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
