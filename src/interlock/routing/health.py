"""Optional active health checks: probe each provider's model list on an interval.

Passive signals (breakers) only learn from traffic; a probe finds a dead backend before a user
does, and notices its recovery while no traffic goes to it. A provider that fails its probe has all
its deployments taken out of rotation until a probe succeeds again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from interlock.core.errors import GatewayError
from interlock.providers.base import Provider
from interlock.routing.snapshot import SnapshotRef
from interlock.routing.state import RoutingState

__all__ = ["HealthChecker"]

log = logging.getLogger(__name__)


class HealthChecker:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        intervals: Mapping[str, float],
        snapshot: SnapshotRef,
        state: RoutingState,
        timeout_s: float = 5.0,
    ) -> None:
        self._providers = providers
        self._intervals = intervals
        self._snapshot = snapshot
        self._state = state
        self._timeout = timeout_s
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for name, interval in self._intervals.items():
            self._tasks.append(asyncio.create_task(self._watch(name, interval), name=f"health-{name}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def probe(self, provider_name: str) -> bool:
        """Probe once; mark the provider's deployments up or down."""
        try:
            async with asyncio.timeout(self._timeout):
                await self._providers[provider_name].list_models()
            healthy = True
        except (GatewayError, TimeoutError):
            healthy = False
        ids = {
            d.id
            for route in self._snapshot.current.models.values()
            for d in route.deployments
            if d.provider == provider_name
        }
        if healthy:
            self._state.unhealthy -= ids
        else:
            if not ids <= self._state.unhealthy:
                log.warning(
                    "health check failed for provider %s; its deployments leave rotation", provider_name
                )
            self._state.unhealthy |= ids
        return healthy

    async def _watch(self, provider_name: str, interval: float) -> None:
        while True:
            await self.probe(provider_name)
            await asyncio.sleep(interval)
