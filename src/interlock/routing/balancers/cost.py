"""Cost-aware: the cheapest healthy deployment that meets the model's latency objective."""

from __future__ import annotations

from collections.abc import Sequence

from interlock.routing.balancers.base import Balancer, RouteHints
from interlock.routing.load import LoadTracker
from interlock.routing.snapshot import Deployment

__all__ = ["CostAware"]


class CostAware:
    """Among deployments whose peak-EWMA time to first token meets ``ttft_slo_s`` (or that have no
    measurements yet), pick the cheapest per blended token; ties and "none meets it" go to
    ``fallback``. ``output_share`` weighs output against input price (typical chat: 3 in : 1 out)."""

    def __init__(
        self, load: LoadTracker, fallback: Balancer, ttft_slo_s: float | None, output_share: float = 0.25
    ) -> None:
        self._load = load
        self._fallback = fallback
        self._slo = ttft_slo_s
        self._share = output_share

    def price(self, deployment: Deployment) -> float:
        return deployment.price_input * (1 - self._share) + deployment.price_output * self._share

    def choose(self, candidates: Sequence[Deployment], hints: RouteHints) -> Deployment:
        meeting = [d for d in candidates if self._meets(d)]
        if not meeting:
            return self._fallback.choose(candidates, hints)
        cheapest = min(self.price(d) for d in meeting)
        tied = [d for d in meeting if self.price(d) <= cheapest * 1.0001]
        return tied[0] if len(tied) == 1 else self._fallback.choose(tied, hints)

    def _meets(self, deployment: Deployment) -> bool:
        if self._load.blocked(deployment.id):
            return False
        load = self._load.get(deployment.id)
        return self._slo is None or load.samples == 0 or load.ewma_ttft_s <= self._slo
