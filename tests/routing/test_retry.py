"""Retry classification, backoff and the retry budget."""

from __future__ import annotations

from interlock.core.errors import (
    AuthenticationFailed,
    UpstreamConnectError,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
)
from interlock.routing.retry import RetryBudget, RetryPolicy, backoff_delay, classify


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_classification() -> None:
    assert classify(UpstreamError("boom")) == "retry"
    assert classify(UpstreamTimeout("slow")) == "retry"
    assert classify(UpstreamConnectError("down")) == "retry"
    assert classify(UpstreamRateLimited("busy")) == "retry"
    assert classify(UpstreamRejected("bad param")) == "fatal"
    assert classify(AuthenticationFailed("who")) == "fatal"
    context = UpstreamRejected("This model's maximum context length is 8192 tokens")
    context.code = "context_length_exceeded"
    assert classify(context) == "context"
    refusal = UpstreamRejected("refused")
    refusal.code = "content_filter"
    assert classify(refusal) == "content"


def test_backoff_is_exponential_with_full_jitter() -> None:
    policy = RetryPolicy(base_delay_s=0.1, max_delay_s=1.0)
    assert backoff_delay(1, policy, rng=lambda: 1.0) == 0.1
    assert backoff_delay(3, policy, rng=lambda: 1.0) == 0.4
    assert backoff_delay(10, policy, rng=lambda: 1.0) == 1.0
    assert backoff_delay(3, policy, rng=lambda: 0.5) == 0.2
    assert backoff_delay(3, policy, rng=lambda: 0.0) == 0.0


def test_budget_caps_retries_at_the_ratio() -> None:
    clock = Clock()
    budget = RetryBudget(RetryPolicy(budget_ratio=0.2, budget_window_s=10, budget_min_per_s=0), clock)
    for _ in range(100):
        budget.on_request()
    granted = sum(budget.try_retry() for _ in range(100))
    assert granted == 20


def test_budget_reserve_and_window() -> None:
    clock = Clock()
    budget = RetryBudget(RetryPolicy(budget_ratio=0.0, budget_window_s=10, budget_min_per_s=0.5), clock)
    assert [budget.try_retry() for _ in range(6)] == [True] * 5 + [False]
    clock.now += 11  # spent retries leave the window
    assert budget.try_retry()
