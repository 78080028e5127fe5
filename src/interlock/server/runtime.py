"""Everything one gateway process builds from settings at start-up, and tears down at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from interlock.config.schema import Settings
from interlock.core.context import RequestContext
from interlock.core.tracing import NO_TRACER, Tracer
from interlock.gateway.chain import Next, build_chain
from interlock.gateway.stages.account import AccountStage
from interlock.gateway.stages.auth import AuthStage
from interlock.gateway.stages.budget import BudgetStage
from interlock.gateway.stages.limits import LimitsStage
from interlock.gateway.stages.route import RouteStage
from interlock.gateway.stages.tier import BudgetPressure as PressureReading
from interlock.gateway.stages.tier import TierStage
from interlock.gateway.stages.trace import TraceStage
from interlock.governance.anomalies import Anomaly, AnomalyMonitor
from interlock.governance.build import Governance, build_governance
from interlock.governance.claims import Claims, claims_for
from interlock.governance.holds import Settler
from interlock.governance.keys import KeyCache
from interlock.governance.pressure import BudgetPressure
from interlock.providers.base import Provider
from interlock.providers.registry import build_providers
from interlock.routing.build import build_snapshot
from interlock.routing.health import HealthChecker
from interlock.routing.router import Router
from interlock.routing.shared_modes import DeploymentMode, SharedModes, mode_store_for
from interlock.routing.snapshot import SnapshotRef
from interlock.routing.state import RoutingState
from interlock.store import RequestLogWriter, RequestRecord, Store, StoreUnavailable, WriterStats
from interlock.telemetry.alerts import AlertMonitor, telemetry_counts
from interlock.telemetry.budget_alerts import BudgetAlerts
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
    governance: Governance | None = None
    """Budgets and rate limits; None when the settings have neither."""
    settler: Settler = field(default_factory=Settler)
    modes: SharedModes = field(init=False)
    anomalies: AnomalyMonitor = field(init=False)
    claims: Claims = field(init=False)
    """Operators' disable / drain / enable of deployments, shared by every process."""
    router: Router = field(init=False)
    health: HealthChecker = field(init=False)
    telemetry: Telemetry = field(init=False)
    alerts: AlertMonitor = field(init=False)
    budget_alerts: BudgetAlerts = field(init=False)
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
        self.budget_alerts = BudgetAlerts(telemetry.metrics.registry, self.alerts)
        self.modes = SharedModes(mode_store_for(self.settings), self._apply_modes)
        self.claims = claims_for(self.settings)
        self.anomalies = AnomalyMonitor(
            lambda: self.store, self.settings.anomalies, self.claims.claim, self._on_anomaly
        )
        if self.governance is not None:
            telemetry.metrics.registry.register(self.governance.metrics())
        self.chain = self._build_chain()

    def _build_chain(self) -> Next:
        """The request path, outermost first (docs/architecture.md describes each stage)."""
        # with tracing off every hook of the no-op tracer does nothing: leave its stage out
        trace = [TraceStage(self.tracer)] if self.tracer.enabled else []
        recorders = [self.telemetry.observe, *(t.recorded for t in trace), self._log_request]
        governed, pressure = self._governance_stages()
        # like the governance stages, tiering is in the chain only when the config asks for it
        tiers = [TierStage(self.snapshot, pressure)] if self.settings.tiers else []
        return build_chain(
            [
                AccountStage([self._settle_holds, *recorders] if governed else recorders),
                *trace,
                AuthStage(self.keys),
                *tiers,
                *governed,
                RouteStage(self.router),
            ]
        )

    def _governance_stages(self) -> tuple[list[LimitsStage | BudgetStage], PressureReading | None]:
        """The ``limits`` and ``budget`` stages, each only when a rule needs it, and the budget
        pressure reading for tiering."""
        gov = self.governance
        if gov is None:
            return [], None
        spec = self.settings.budgets
        stages: list[LimitsStage | BudgetStage] = []
        if gov.limits.limits:
            stages.append(LimitsStage(gov.limits, self.snapshot, spec.default_output_tokens))
        pressure = BudgetPressure(gov.budgets)
        if gov.budgets.budgets or spec.max_request_usd or spec.key_max_request_usd:
            stages.append(
                BudgetStage(gov.budgets, gov.limits, self.snapshot, self.budget_alerts, pressure, spec)
            )
        return stages, pressure

    @classmethod
    def build(cls, settings: Settings, tracer: Tracer | None = None) -> Runtime:
        """Assemble the parts that need no I/O; :meth:`start` connects the rest."""
        return cls(
            settings=settings,
            snapshot=SnapshotRef(build_snapshot(settings)),
            providers=build_providers(settings.providers),
            keys=KeyCache(None, settings.master_key_hash()),
            tracer=tracer or tracer_from_settings(settings),
            governance=_governance(settings),
        )

    def _log_request(self, ctx: RequestContext, record: RequestRecord) -> None:
        """Hand the record to the request log (the writer exists once :meth:`start` made it)."""
        if self.writer is not None:
            if self.settings.logging.store_bodies:
                record = with_bodies(record, ctx)
            self.writer.submit(record)

    def _apply_modes(self, modes: Mapping[str, DeploymentMode]) -> None:
        """Every deployment not ``enabled`` (disabled or draining) takes no new requests."""
        disabled = self.routing.disabled
        disabled.clear()
        disabled.update(deployment for deployment, mode in modes.items() if mode != "enabled")

    async def _on_anomaly(self, anomaly: Anomaly) -> None:
        """Report a spend anomaly; with ``anomalies.revoke_keys``, revoke the key (audited)."""
        await self.budget_alerts.anomaly(anomaly)
        store = self.store
        revoking = anomaly.scope == "key" and self.settings.anomalies.revoke_keys and store is not None
        if revoking and store is not None and await store.keys.revoke(anomaly.subject):
            self.keys.forget(anomaly.subject)
            detail = {"via": "spend-anomaly", "recent_usd": anomaly.recent_usd}
            await store.audit.record("revoke", anomaly.subject, actor_key_id=None, detail=detail)

    def _settle_holds(self, ctx: RequestContext, record: RequestRecord) -> None:
        """Settle what the governance stages took for ``ctx`` (a recorder: never blocks or raises)."""
        if ctx.holds:
            self.settler.settle(ctx, record.cost)

    def _writer_stats(self) -> WriterStats | None:
        return self.writer.stats if self.writer is not None else None

    async def start(self) -> None:
        """Open the store (applying migrations), load keys, start the request-log writer."""
        settings = self.settings
        self.store = await Store.open(settings.store)
        self.keys.attach(self.store.keys, self.store.tenants)
        await self.keys.start()
        if self.governance is not None:
            await self.governance.start()
        await self.modes.start()
        self.anomalies.start()
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
        """Readiness: config loaded and the store reachable. Shared counters that fell back to
        per-process limits are reported ("degraded") but keep the instance ready: every replica
        loses Redis at once, and taking them all out of service would turn a degraded gateway
        into no gateway."""
        checks = {"config": "ok"}
        store_ok = self.store is not None and await self.store.ping()
        checks["store"] = "ok" if store_ok else "unreachable"
        if self.governance is not None:
            health = self.governance.health
            checks["shared_state"] = "degraded" if health.degraded else "ok"
        return store_ok, checks

    async def stop(self) -> None:
        if self._retention is not None:
            self._retention.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retention
            self._retention = None
        await self.settler.drain()
        await self.anomalies.stop()
        await self.claims.aclose()
        await self.modes.stop()
        if self.governance is not None:
            await self.governance.aclose()
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


def _governance(settings: Settings) -> Governance | None:
    """The counters, budgets and limits, when the settings have any budget, limit or cap."""
    budgets, limits = settings.budgets, settings.limits
    if not (budgets.rules or budgets.max_request_usd or budgets.key_max_request_usd or limits.rules):
        return None
    return build_governance(settings)
