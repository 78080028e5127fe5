"""Each deployment's state as operators see it: ``GET /admin/deployments`` and ``interlock status``."""

from __future__ import annotations

from typing import Any

from interlock.routing.snapshot import RoutingSnapshot
from interlock.routing.state import RoutingState

__all__ = ["deployment_status"]


def deployment_status(snapshot: RoutingSnapshot, state: RoutingState) -> list[dict[str, Any]]:
    """One entry per deployment of every model, in config order."""
    views: list[dict[str, Any]] = []
    for route in snapshot.models.values():
        for deployment in route.deployments:
            breaker = state.breaker(route, deployment).snapshot()
            limiter = state.limiter(route, deployment)
            load = state.load.get(deployment.id)
            disabled = deployment.id in state.disabled
            unhealthy = deployment.id in state.unhealthy
            views.append(
                {
                    "id": deployment.id,
                    "model": route.name,
                    "provider": deployment.provider,
                    "upstream_model": deployment.upstream_model,
                    "pool": deployment.pool,
                    "labels": dict(deployment.labels),
                    "weight": deployment.weight,
                    "state": "disabled" if disabled else "unhealthy" if unhealthy else breaker.state,
                    "breaker": {
                        "state": breaker.state,
                        "calls": breaker.calls,
                        "failure_rate": round(breaker.failure_rate, 4),
                        "slow_rate": round(breaker.slow_rate, 4),
                        "consecutive_failures": breaker.consecutive_failures,
                        "opened_count": breaker.opened_count,
                    },
                    "error_rate": round(breaker.failure_rate, 4),
                    "ewma_ttft_ms": round(load.ewma_ttft_s * 1000, 3) if load.samples else None,
                    "in_flight": load.in_flight,
                    "requests": load.requests,
                    "failures": load.failures,
                    "concurrency_limit": int(limiter.limit),
                    "queued": limiter.queued,
                    "rejected": limiter.rejected,
                    "limit_decreases": limiter.decreases,
                    "disabled": disabled,
                    "health_check_failing": unhealthy,
                    "price": {"input": deployment.price_input, "output": deployment.price_output},
                }
            )
    return views
