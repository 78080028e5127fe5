"""Least outstanding requests: the deployment with the fewest requests in flight."""

from __future__ import annotations

import random
from collections.abc import Sequence

from interlock.routing.balancers.base import RouteHints
from interlock.routing.load import LoadTracker
from interlock.routing.snapshot import Deployment

__all__ = ["LeastOutstanding"]


class LeastOutstanding:
    """Fewest in-flight requests relative to weight; ties broken at random."""

    def __init__(self, load: LoadTracker, rng: random.Random | None = None) -> None:
        self._load = load
        self._random = (rng or random.Random()).random

    def choose(self, candidates: Sequence[Deployment], hints: RouteHints) -> Deployment:
        best: Deployment | None = None
        best_key = (0.0, 0.0)
        for deployment in candidates:
            key = (self._load.get(deployment.id).in_flight / deployment.weight, self._random())
            if best is None or key < best_key:
                best, best_key = deployment, key
        assert best is not None
        return best
