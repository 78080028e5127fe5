"""Balancers: pick one deployment of a model for a request."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol

from interlock.routing.snapshot import Deployment

__all__ = ["Balancer", "WeightedRandom"]


class Balancer(Protocol):
    def choose(self, deployments: Sequence[Deployment]) -> Deployment: ...


class WeightedRandom:
    """Pick a deployment with probability proportional to its weight."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._random = (rng or random.Random()).random

    def choose(self, deployments: Sequence[Deployment]) -> Deployment:
        if len(deployments) == 1:
            return deployments[0]
        point = self._random() * sum(d.weight for d in deployments)
        for deployment in deployments:
            point -= deployment.weight
            if point < 0:
                return deployment
        return deployments[-1]
