"""Power of two choices over peak-EWMA cost — the default balancer.

Two distinct candidates are drawn at random and the one with the lower expected wait
(peak-EWMA latency of the request's kind × (in flight + 1), divided by weight) wins. Deployments inside a
``Retry-After`` period lose to any that are not. Two random choices avoid the herd behaviour of
always picking the single best, at O(1) cost per decision whatever the number of deployments.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from interlock.routing.balancers.base import RouteHints
from interlock.routing.latency import LatencyKind
from interlock.routing.load import LoadTracker
from interlock.routing.snapshot import Deployment

__all__ = ["PeakEwmaP2C"]


class PeakEwmaP2C:
    def __init__(self, load: LoadTracker, rng: random.Random | None = None) -> None:
        self._load = load
        self._rng = rng or random.Random()

    def choose(self, candidates: Sequence[Deployment], hints: RouteHints) -> Deployment:
        count = len(candidates)
        if count == 1:
            return candidates[0]
        first = self._rng.randrange(count)
        second = self._rng.randrange(count - 1)
        if second >= first:
            second += 1
        a, b = candidates[first], candidates[second]
        kind = hints.latency_kind
        return a if self._score(a, kind) <= self._score(b, kind) else b

    def _score(self, deployment: Deployment, kind: LatencyKind) -> float:
        load = self._load
        cost = load.cost(deployment.id, kind) / deployment.weight
        return cost + 1e6 if load.blocked(deployment.id) else cost
