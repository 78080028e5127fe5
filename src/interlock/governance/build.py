"""Governance from settings: the counter backend, the budget engine and the rate limiter.

The backend follows the deployment:

- ``redis:`` configured: Redis, with the per-process fallback while it is unreachable;
- no Redis, ``server.workers`` > 1: a SQLite file the workers share (``limits.local_counters_file``);
- no Redis, one worker: process memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from interlock.config.governance import BudgetsSpec, LimitsSpec
from interlock.config.schema import Settings
from interlock.governance.budgets import Budget, BudgetEngine
from interlock.governance.counters import Counters
from interlock.governance.fallback import FallbackCounters
from interlock.governance.health import Backend, SharedStateHealth, SharedStateMetrics
from interlock.governance.local_counters import LocalCounters, MemoryStore
from interlock.governance.money import usd_to_micros
from interlock.governance.ratelimits import RateLimit, RateLimiter
from interlock.governance.redis_counters import RedisCounters
from interlock.governance.scopes import Scope
from interlock.governance.sqlite_store import SqliteStore

__all__ = ["Governance", "budgets_from_spec", "build_governance", "limits_from_spec"]


@dataclass(slots=True)
class Governance:
    """The live counting parts of one gateway process."""

    counters: Counters
    health: SharedStateHealth
    budgets: BudgetEngine
    limits: RateLimiter
    redis: RedisCounters | None = None

    def metrics(self) -> SharedStateMetrics:
        """A prometheus collector for ``interlock_shared_state_*`` (register it once)."""
        return SharedStateMetrics(self.health)

    async def start(self) -> None:
        if isinstance(self.counters, FallbackCounters):
            await self.counters.start()

    async def aclose(self) -> None:
        await self.counters.aclose()


def budgets_from_spec(spec: BudgetsSpec) -> list[Budget]:
    return [
        Budget(
            name=rule.name,
            scope=Scope(rule.scope, rule.id, rule.model),
            period=rule.period,
            limit=usd_to_micros(rule.limit_usd),
            thresholds=tuple(rule.thresholds_pct if rule.thresholds_pct is not None else spec.thresholds_pct),
            action=rule.action,
        )
        for rule in spec.rules
    ]


def limits_from_spec(spec: LimitsSpec) -> list[RateLimit]:
    return [
        RateLimit(
            name=rule.label(),
            scope=Scope(rule.scope, rule.id, rule.model),
            requests_per_min=rule.requests_per_min,
            tokens_per_min=rule.tokens_per_min,
            cost_per_min=usd_to_micros(rule.cost_per_min_usd) if rule.cost_per_min_usd else None,
            concurrent=rule.concurrent,
        )
        for rule in spec.rules
    ]


def _counters(settings: Settings, health_clock: Callable[[], float]) -> tuple[Counters, SharedStateHealth]:
    spec = settings.redis
    if spec is not None:
        health = SharedStateHealth("redis", health_clock)
        redis = RedisCounters.from_url(
            spec.url.get_secret_value(),
            prefix=spec.prefix,
            connect_timeout_s=spec.connect_timeout_s,
            timeout_s=spec.timeout_s,
            max_connections=spec.max_connections,
        )
        processes = spec.fallback_processes or settings.server.workers
        counters = FallbackCounters(
            redis, health, share=1 / processes, retry_interval_s=spec.reconnect_interval_s
        )
        return counters, health
    backend: Backend = "sqlite" if settings.server.workers > 1 else "memory"
    health = SharedStateHealth(backend, health_clock)
    if backend == "sqlite":
        return LocalCounters(SqliteStore(settings.limits.local_counters_file)), health
    return LocalCounters(MemoryStore()), health


def build_governance(settings: Settings, *, clock: Callable[[], float] = time.time) -> Governance:
    """Everything budgets and rate limits need, built from ``settings`` (no I/O until ``start``)."""
    counters, health = _counters(settings, clock)
    budgets = BudgetEngine(
        budgets_from_spec(settings.budgets),
        counters,
        reservation_ttl_s=settings.budgets.reservation_ttl_s,
        max_request_cost=(
            usd_to_micros(settings.budgets.max_request_usd) if settings.budgets.max_request_usd else None
        ),
        key_max_request_cost={k: usd_to_micros(v) for k, v in settings.budgets.key_max_request_usd.items()},
        clock=clock,
    )
    limits = RateLimiter(
        limits_from_spec(settings.limits), counters, lease_ttl_s=settings.limits.lease_ttl_s, clock=clock
    )
    redis = counters.primary if isinstance(counters, FallbackCounters) else None
    return Governance(counters, health, budgets, limits, redis)
