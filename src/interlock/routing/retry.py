"""Retry policy: which failures to retry, how long to wait, and a budget so retries cannot amplify
an outage.

The budget works like Finagle's: every first attempt deposits ``ratio`` of a token, every retry
withdraws one, over a sliding window; a small reserve (``min_per_s`` times the window) lets low-traffic models
retry at all. With ``ratio=0.2``, retries stay at or below 20 % of requests however bad things get.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from interlock.core.errors import GatewayError, UpstreamRejected
from interlock.routing.window import SlidingCounts

__all__ = ["RetryBudget", "RetryPolicy", "backoff_delay", "classify"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How one model retries and falls back."""

    max_attempts: int = 4
    """Attempts in total, the first included, across deployments and fallback models."""
    base_delay_s: float = 0.02
    max_delay_s: float = 1.0
    max_retry_after_s: float = 5.0
    """A ``Retry-After`` longer than this is not waited out: the next deployment is tried instead."""
    budget_ratio: float = 0.2
    budget_window_s: float = 10.0
    budget_min_per_s: float = 2.0


def classify(err: GatewayError) -> str:
    """``retry`` (another attempt may succeed), ``context`` (needs a larger context window),
    ``content`` (refused by a content policy) or ``fatal`` (the caller's own mistake)."""
    code = err.code or ""
    if code == "context_length_exceeded" or "context length" in err.message.lower():
        return "context"
    if code == "content_filter" or code == "content_policy_violation":
        return "content"
    if isinstance(err, UpstreamRejected) or not err.retryable:
        return "fatal"
    return "retry"


def backoff_delay(retry: int, policy: RetryPolicy, rng: Callable[[], float] = random.random) -> float:
    """Exponential backoff with full jitter for the ``retry``-th retry (1-based)."""
    ceiling = min(policy.max_delay_s, policy.base_delay_s * (2 ** (retry - 1)))
    return float(rng() * ceiling)


class RetryBudget:
    """Sliding-window token budget for retries of one model."""

    __slots__ = ("_counts", "policy")

    def __init__(self, policy: RetryPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._counts = SlidingCounts(policy.budget_window_s, 10, 2, clock)  # requests, retries

    def on_request(self) -> None:
        self._counts.add(0)

    def try_retry(self) -> bool:
        """Withdraw one retry if the budget allows it."""
        requests, retries = self._counts.totals()
        policy = self.policy
        allowed = requests * policy.budget_ratio + policy.budget_min_per_s * policy.budget_window_s
        if retries + 1 > allowed:
            return False
        self._counts.add(1)
        return True
