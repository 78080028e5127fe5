"""Everything one gateway process builds from settings at start-up, and tears down at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from interlock.config.schema import Settings
from interlock.core.context import RequestContext
from interlock.core.tracing import NO_TRACER, Tracer
from interlock.gateway.chain import Next, build_chain
from interlock.gateway.stages.account import AccountStage
from interlock.gateway.stages.auth import AuthStage
from interlock.gateway.stages.route import RouteStage
from interlock.gateway.stages.trace import TraceStage
from interlock.governance.keys import KeyCache
from interlock.providers.base import Provider
from interlock.providers.registry import build_providers
from interlock.routing.build import build_snapshot
from interlock.routing.health import HealthChecker
from interlock.routing.router import Router
from interlock.routing.snapshot import SnapshotRef
from interlock.routing.state import RoutingState
from interlock.store import RequestLogWriter, RequestRecord, Store, StoreUnavailable, WriterStats
from interlock.telemetry.alerts import AlertMonitor, telemetry_counts
from interlock.telemetry.recorder import Telemetry
from interlock.telemetry.retention import keep_retention, with_bodies
from interlock.telemetry.tracing import tracer_from_settings

__all__ = ["Runtime"]

log = logging.getLogger("interlock")


@dataclass(slots=True)
class Runtime:
    """The live parts of a gateway: store, writer, keys, providers, routing snapshot and chain."""

    settings: Settings
    snapshot: SnapshotRef
    providers: dict[str, Provider]
    keys: KeyCache
    store: Store | None = None
    writer: RequestLogWriter | None = None
    routing: RoutingState = field(default_factory=RoutingState)
    tracer: Tracer = NO_TRACER
    router: Router = field(init=False)
    health: HealthChecker = field(init=False)
    telemetry: Telemetry = field(init=False)
    alerts: AlertMonitor = field(init=False)
    _retention: asyncio.Task[None] | None = None
    chain: Next = field(init=False)

    def __post_init__(self) -> None:
        self.router = Router(self.snapshot, self.providers, self.routing, self.tracer)
        self.telemetry = Telemetry(self.snapshot, self.routing, self._writer_stats)
        telemetry = self.telemetry
        self.alerts = AlertMonitor(
            self.settings.telemetry.alerts, lambda: telemetry_counts(telemetry), telemetry.metrics.registry
        )
        intervals = {
            name: spec.health_check_interval_s
            for name, spec in self.settings.providers.items()
            if spec.health_check_interval_s
        }
        self.health = HealthChecker(self.providers, intervals, self.snapshot, self.routing)
        self.chain = self._build_chain()

    def _build_chain(self) -> Next:
        """The request path, outermost first (docs/architecture.md describes each stage)."""
        # with tracing off every hook of the no-op tracer does nothing: leave its stage out
        trace = [TraceStage(self.tracer)] if self.tracer.enabled else []
        return build_chain(
            [
                AccountStage([self.telemetry.observe, *(t.recorded for t in trace), self._log_request]),
                *trace,
                AuthStage(self.keys),
                RouteStage(self.router),
            ]
        )

    @classmethod
    def build(cls, settings: Settings, tracer: Tracer | None = None) -> Runtime:
        """Assemble the parts that need no I/O; :meth:`start` connects the rest."""
        return cls(
            settings=settings,
            snapshot=SnapshotRef(build_snapshot(settings)),
            providers=build_providers(settings.providers),
            keys=KeyCache(None, settings.master_key_hash()),
            tracer=tracer or tracer_from_settings(settings),
        )

    def _log_request(self, ctx: RequestContext, record: RequestRecord) -> None:
        """Hand the record to the request log (the writer exists once :meth:`start` made it)."""
        if self.writer is not None:
            if self.settings.logging.store_bodies:
                record = with_bodies(record, ctx)
            self.writer.submit(record)

    def _writer_stats(self) -> WriterStats | None:
        return self.writer.stats if self.writer is not None else None

    async def start(self) -> None:
        """Open the store (applying migrations), load keys, start the request-log writer."""
        settings = self.settings
        self.store = await Store.open(settings.store)
        self.keys.attach(self.store.keys, self.store.tenants)
        await self.keys.start()
        self.health.start()
        self.alerts.start()
        if settings.logging.request_log:
            # small batches: each one's statement building runs on the event loop, so a big one is a stall
            self.writer = RequestLogWriter(
                self.store.requests, capacity=settings.logging.buffer_size, batch_size=64
            )
            await self.writer.start()
            self._retention = asyncio.create_task(
                keep_retention(self.store.requests, settings.logging.retention_days),
                name="interlock-retention",
            )

    async def ready(self) -> tuple[bool, dict[str, str]]:
        """Readiness: config loaded and the store reachable."""
        checks = {"config": "ok"}
        store_ok = self.store is not None and await self.store.ping()
        checks["store"] = "ok" if store_ok else "unreachable"
        return store_ok, checks

    async def stop(self) -> None:
        if self._retention is not None:
            self._retention.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retention
            self._retention = None
        await self.alerts.stop()
        await self.health.stop()
        await self.keys.stop()
        if self.writer is not None:
            await self.writer.stop()
            self.writer = None
        for provider in self.providers.values():
            await provider.aclose()
        await self.tracer.aclose()
        if self.store is not None:
            try:
                await self.store.close()
            except StoreUnavailable:
                log.warning("the store could not be closed cleanly")
            self.store = None
