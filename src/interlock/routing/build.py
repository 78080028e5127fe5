"""Build the routing snapshot from settings."""

from __future__ import annotations

import time
from types import MappingProxyType

from interlock.config.schema import Settings
from interlock.routing.snapshot import Deployment, ModelRoute, RoutingSnapshot

__all__ = ["build_snapshot"]


def build_snapshot(settings: Settings) -> RoutingSnapshot:
    """One immutable snapshot of every model and deployment in ``settings``."""
    models: dict[str, ModelRoute] = {}
    for name, spec in settings.models.items():
        deployments = []
        for index, d in enumerate(spec.deployments):
            pool_labels = settings.pools[d.pool].labels if d.pool else {}
            deployments.append(
                Deployment(
                    id=f"{name}/{d.provider}/{d.model}#{index}",
                    model_name=name,
                    provider=d.provider,
                    upstream_model=d.model,
                    pool=d.pool,
                    labels=MappingProxyType({**pool_labels, **d.labels}),
                    price_input=d.price.input,
                    price_output=d.price.output,
                    price_cached_input=d.price.cached_input,
                    weight=d.weight,
                    max_concurrency=d.max_concurrency,
                    context_window=d.context_window or spec.context_window,
                )
            )
        models[name] = ModelRoute(
            name=name,
            deployments=tuple(deployments),
            kind=spec.kind,
            description=spec.description,
            fallbacks=tuple(spec.fallbacks),
            context_window=spec.context_window,
            context_window_fallbacks=tuple(spec.context_window_fallbacks),
            content_policy_fallbacks=tuple(spec.content_policy_fallbacks),
            spec=spec,
        )
    tiers = MappingProxyType(dict(settings.tiers))
    return RoutingSnapshot(models=MappingProxyType(models), created=int(time.time()), tiers=tiers)
