"""Balancers on a virtual clock: who gets picked, and why."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from interlock.routing.balancers import (
    CostAware,
    LeastOutstanding,
    PeakEwmaP2C,
    PrefixAffinity,
    RoundRobin,
    RouteHints,
    SessionAffinity,
    WeightedRandom,
)
from interlock.routing.balancers.base import prompt_chars, prompt_text
from interlock.routing.load import LoadTracker
from interlock.routing.snapshot import Deployment


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def fleet(n: int, **fields: float) -> list[Deployment]:
    return [
        Deployment(id=f"d{i}", model_name="m", provider="p", upstream_model="u", **fields) for i in range(n)
    ]  # type: ignore[arg-type]


def test_weighted_random_follows_weights() -> None:
    a = Deployment(id="a", model_name="m", provider="p", upstream_model="u", weight=1)
    b = Deployment(id="b", model_name="m", provider="p", upstream_model="u", weight=3)
    balancer = WeightedRandom(random.Random(1))
    picks = Counter(balancer.choose([a, b], RouteHints()).id for _ in range(4000))
    assert 2800 < picks["b"] < 3200


def test_round_robin_cycles() -> None:
    deployments = fleet(3)
    balancer = RoundRobin()
    assert [balancer.choose(deployments, RouteHints()).id for _ in range(6)] == ["d0", "d1", "d2"] * 2


def test_least_outstanding_prefers_the_idle() -> None:
    load = LoadTracker(clock=Clock())
    deployments = fleet(3)
    for _ in range(3):
        load.start("d0")
    load.start("d1")
    assert LeastOutstanding(load, random.Random(0)).choose(deployments, RouteHints()).id == "d2"


def test_p2c_avoids_the_slow_and_the_busy() -> None:
    clock = Clock()
    load = LoadTracker(clock=clock)
    deployments = fleet(2)
    load.observe_ttft("d0", 2.0)
    load.observe_ttft("d1", 0.1)
    balancer = PeakEwmaP2C(load, random.Random(0))
    assert {balancer.choose(deployments, RouteHints()).id for _ in range(20)} == {"d1"}
    for _ in range(30):  # d1 is now very busy
        load.start("d1")
    assert balancer.choose(deployments, RouteHints()).id == "d0"


def test_p2c_respects_retry_after() -> None:
    clock = Clock()
    load = LoadTracker(clock=clock)
    deployments = fleet(2)
    load.observe_failure("d1", retry_after_s=5)
    load.observe_ttft("d0", 3.0)  # slow, but not rate limited
    balancer = PeakEwmaP2C(load, random.Random(0))
    assert {balancer.choose(deployments, RouteHints()).id for _ in range(10)} == {"d0"}
    clock.now += 6
    load.observe_ttft("d1", 0.01)
    assert balancer.choose(deployments, RouteHints()).id == "d1"


def test_peak_ewma_rises_at_once_and_decays_slowly() -> None:
    clock = Clock()
    load = LoadTracker(clock=clock, decay_s=10)
    load.observe_ttft("d0", 0.1)
    load.observe_ttft("d0", 1.0)
    assert load.get("d0").ewma_ttft_s == 1.0
    clock.now += 10
    load.observe_ttft("d0", 0.1)
    assert 0.1 < load.get("d0").ewma_ttft_s < 1.0


def test_cost_aware_picks_the_cheapest_that_meets_the_slo() -> None:
    load = LoadTracker(clock=Clock())
    cheap = Deployment(
        id="cheap", model_name="m", provider="p", upstream_model="u", price_input=0.1, price_output=0.2
    )
    mid = Deployment(
        id="mid", model_name="m", provider="p", upstream_model="u", price_input=1, price_output=2
    )
    dear = Deployment(
        id="dear", model_name="m", provider="p", upstream_model="u", price_input=5, price_output=10
    )
    balancer = CostAware(load, PeakEwmaP2C(load, random.Random(0)), ttft_slo_s=0.5)
    assert balancer.choose([dear, mid, cheap], RouteHints()).id == "cheap"
    load.observe_ttft("cheap", 2.0)  # too slow for the objective now
    assert balancer.choose([dear, mid, cheap], RouteHints()).id == "mid"


def test_session_affinity_is_sticky_and_moves_only_when_needed() -> None:
    deployments = fleet(4)
    balancer = SessionAffinity(RoundRobin())
    homes = {s: balancer.choose(deployments, RouteHints(session=s)).id for s in map(str, range(200))}
    assert all(balancer.choose(deployments, RouteHints(session=s)).id == d for s, d in homes.items())
    assert len(set(homes.values())) == 4
    without_d0 = [d for d in deployments if d.id != "d0"]
    moved = {s for s, d in homes.items() if balancer.choose(without_d0, RouteHints(session=s)).id != d}
    assert moved == {s for s, d in homes.items() if d == "d0"}


def test_prefix_affinity_follows_the_shared_prefix() -> None:
    load = LoadTracker(clock=Clock())
    deployments = fleet(4)
    balancer = PrefixAffinity(load, block_chars=16)
    tenant_a = "system prompt of tenant A " * 40
    tenant_b = "another long context for tenant B " * 40
    first_a = balancer.choose(deployments, RouteHints(prompt=tenant_a + "question 1")).id
    first_b = balancer.choose(deployments, RouteHints(prompt=tenant_b + "question 1")).id
    assert first_a != first_b  # new prefixes go to the least loaded / emptiest replica
    for i in range(10):
        assert balancer.choose(deployments, RouteHints(prompt=tenant_a + f"q{i}")).id == first_a
        assert balancer.choose(deployments, RouteHints(prompt=tenant_b + f"q{i}")).id == first_b


def test_prefix_affinity_load_guard_spreads_a_hot_prefix() -> None:
    load = LoadTracker(clock=Clock())
    deployments = fleet(2)
    balancer = PrefixAffinity(load, block_chars=16, balance_abs=4, balance_rel=1.5)
    hot = "the hot tenant's context " * 40
    home = balancer.choose(deployments, RouteHints(prompt=hot + "x")).id
    for _ in range(10):
        load.start(home)
    other = balancer.choose(deployments, RouteHints(prompt=hot + "y")).id
    assert other != home


@pytest.mark.parametrize(
    "body",
    [
        {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi " * 1000}]},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url"}]}]},
        {"messages": [{"role": "user"}, "not a message", {"role": "tool", "content": ""}]},
        {"messages": []},
        {"input": "embed me"},
        {"input": ["a", "b"]},
        {},
    ],
)
def test_prompt_chars_is_the_length_of_the_prompt_text(body: dict[str, object]) -> None:
    assert prompt_chars(body) == len(prompt_text(body))
