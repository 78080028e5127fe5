"""Load-blind balancers: weighted random and round robin."""

from __future__ import annotations

import random
from collections.abc import Sequence

from interlock.routing.balancers.base import RouteHints
from interlock.routing.snapshot import Deployment

__all__ = ["RoundRobin", "WeightedRandom"]


class WeightedRandom:
    """Pick a deployment with probability proportional to its weight."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._random = (rng or random.Random()).random

    def choose(self, candidates: Sequence[Deployment], hints: RouteHints) -> Deployment:
        if len(candidates) == 1:
            return candidates[0]
        point = self._random() * sum(d.weight for d in candidates)
        for deployment in candidates:
            point -= deployment.weight
            if point < 0:
                return deployment
        return candidates[-1]


class RoundRobin:
    """Each deployment in turn (by position in the candidate list)."""

    def __init__(self) -> None:
        self._next = 0

    def choose(self, candidates: Sequence[Deployment], hints: RouteHints) -> Deployment:
        chosen = candidates[self._next % len(candidates)]
        self._next += 1
        return chosen
