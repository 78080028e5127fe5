"""The live, per-process routing state: load, breakers, limiters, balancers and budgets.

The routing snapshot says what exists; this says how it is doing. Entries are made on first use
from the model's settings, keyed by deployment id and model name, so a new snapshot keeps the
state of the deployments it still has.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from interlock.routing.balancers import (
    Balancer,
    CostAware,
    LeastOutstanding,
    PeakEwmaP2C,
    PrefixAffinity,
    RoundRobin,
    SessionAffinity,
    WeightedRandom,
)
from interlock.routing.breaker import Breaker, BreakerPolicy
from interlock.routing.concurrency import ConcurrencyLimiter, LimiterPolicy
from interlock.routing.latency import LatencyModel
from interlock.routing.load import LoadTracker
from interlock.routing.retry import RetryBudget, RetryPolicy
from interlock.routing.snapshot import Deployment, ModelRoute

__all__ = ["RoutingState", "breaker_policy", "limiter_policy", "retry_policy"]


def retry_policy(route: ModelRoute) -> RetryPolicy:
    spec = route.spec.retry
    return RetryPolicy(
        max_attempts=spec.max_attempts,
        base_delay_s=spec.base_delay_ms / 1000,
        max_delay_s=spec.max_delay_ms / 1000,
        max_retry_after_s=spec.max_retry_after_s,
        budget_ratio=spec.budget_ratio,
        budget_window_s=spec.budget_window_s,
        budget_min_per_s=spec.budget_min_per_s,
    )


def breaker_policy(route: ModelRoute) -> BreakerPolicy:
    spec = route.spec.breaker
    return BreakerPolicy(
        window_s=spec.window_s,
        min_calls=spec.min_calls,
        failure_rate=spec.failure_rate,
        slow_call_s=spec.slow_call_ms / 1000 if spec.slow_call_ms else None,
        slow_call_ratio=spec.slow_call_ratio,
        slow_call_rate=spec.slow_call_rate,
        consecutive_failures=spec.consecutive_failures,
        open_s=spec.open_s,
        max_open_s=spec.max_open_s,
        half_open_probes=spec.half_open_probes,
        probe_successes=spec.probe_successes,
    )


def limiter_policy(route: ModelRoute, deployment: Deployment) -> LimiterPolicy:
    spec = route.spec.concurrency
    ceiling = min(spec.max_limit, deployment.max_concurrency or spec.max_limit)
    return LimiterPolicy(
        adaptive=spec.adaptive,
        initial_limit=min(spec.initial_limit, ceiling),
        min_limit=min(spec.min_limit, ceiling),
        max_limit=ceiling,
        queue_size=spec.queue_size,
        queue_ratio=spec.queue_ratio,
        max_wait_s=spec.max_wait_ms / 1000,
        tolerance=spec.latency_tolerance,
        answer_tolerance=spec.answer_tolerance,
        shed_tolerance=spec.shed_tolerance,
        batch_share=spec.batch_share,
    )


class RoutingState:
    def __init__(self, clock: Callable[[], float] = time.monotonic, rng: random.Random | None = None) -> None:
        self.clock = clock
        self.rng = rng or random.Random()
        self.load = LoadTracker(clock=clock)
        self.disabled: set[str] = set()
        """Deployments an operator took out of rotation."""
        self.unhealthy: set[str] = set()
        """Deployments whose provider failed its last active health check."""
        self._breakers: dict[str, Breaker] = {}
        self._limiters: dict[str, ConcurrencyLimiter] = {}
        self._latency: dict[str, LatencyModel] = {}
        self._balancers: dict[str, Balancer] = {}
        self._budgets: dict[str, RetryBudget] = {}
        self._hedges: dict[str, RetryBudget] = {}

    def breaker(self, route: ModelRoute, deployment: Deployment) -> Breaker:
        breaker = self._breakers.get(deployment.id)
        if breaker is None:
            breaker = self._breakers[deployment.id] = Breaker(breaker_policy(route), self.clock)
        return breaker

    def limiter(self, route: ModelRoute, deployment: Deployment) -> ConcurrencyLimiter:
        limiter = self._limiters.get(deployment.id)
        if limiter is None:
            policy = limiter_policy(route, deployment)
            limiter = self._limiters[deployment.id] = ConcurrencyLimiter(deployment.id, policy, self.clock)
        return limiter

    def latency(self, deployment: Deployment) -> LatencyModel:
        """The deployment's latency baselines per kind and size of request."""
        model = self._latency.get(deployment.id)
        if model is None:
            model = self._latency[deployment.id] = LatencyModel(clock=self.clock)
        return model

    def budget(self, route: ModelRoute) -> RetryBudget:
        budget = self._budgets.get(route.name)
        if budget is None:
            budget = self._budgets[route.name] = RetryBudget(retry_policy(route), self.clock)
        return budget

    def hedge_budget(self, route: ModelRoute) -> RetryBudget:
        budget = self._hedges.get(route.name)
        if budget is None:
            policy = RetryPolicy(budget_ratio=route.spec.hedge.budget_ratio, budget_min_per_s=0.0)
            budget = self._hedges[route.name] = RetryBudget(policy, self.clock)
        return budget

    def balancer(self, route: ModelRoute) -> Balancer:
        balancer = self._balancers.get(route.name)
        if balancer is None:
            balancer = self._balancers[route.name] = self._make_balancer(route)
        return balancer

    def _make_balancer(self, route: ModelRoute) -> Balancer:
        spec = route.spec.routing
        p2c = PeakEwmaP2C(self.load, self.rng)
        if spec.strategy == "weighted":
            return WeightedRandom(self.rng)
        if spec.strategy == "round-robin":
            return RoundRobin()
        if spec.strategy == "least-outstanding":
            return LeastOutstanding(self.load, self.rng)
        if spec.strategy == "cost":
            slo = spec.ttft_slo_ms / 1000 if spec.ttft_slo_ms else None
            return CostAware(self.load, p2c, slo)
        if spec.strategy == "session":
            return SessionAffinity(p2c)
        if spec.strategy == "prefix":
            return PrefixAffinity(
                self.load,
                block_chars=spec.prefix_block_chars,
                match_threshold=spec.prefix_match_threshold,
                balance_abs=spec.prefix_balance_abs,
                balance_rel=spec.prefix_balance_rel,
            )
        return p2c

    def snapshot_of(self, deployment_id: str) -> tuple[Breaker | None, ConcurrencyLimiter | None]:
        """The breaker and limiter of a deployment, if it has handled traffic."""
        return self._breakers.get(deployment_id), self._limiters.get(deployment_id)
