"""Everything that happens when a request finishes, besides the request log: metrics and SLOs."""

from __future__ import annotations

from collections.abc import Callable

from interlock.core.context import RequestContext
from interlock.routing.snapshot import SnapshotRef
from interlock.routing.state import RoutingState
from interlock.store import RequestRecord, WriterStats
from interlock.telemetry.metrics import Metrics
from interlock.telemetry.outcome import OUTCOME_CLASSES, OutcomeClass, classify_status
from interlock.telemetry.slo import Objectives, SloTracker

__all__ = ["Telemetry"]


class Telemetry:
    def __init__(
        self, snapshot: SnapshotRef, state: RoutingState, writer_stats: Callable[[], WriterStats | None]
    ) -> None:
        self._snapshot = snapshot
        self.metrics = Metrics(snapshot, state, writer_stats)
        self.slo = SloTracker()
        self._objectives: dict[str, Objectives] = {}

    def objectives(self, model: str) -> Objectives:
        found = self._objectives.get(model)
        if found is None:
            route = self._snapshot.current.models.get(model)
            spec = route.spec.slo if route is not None else None
            found = Objectives(
                ttft_s=spec.ttft_ms / 1000 if spec and spec.ttft_ms else None,
                tpot_s=spec.tpot_ms / 1000 if spec and spec.tpot_ms else None,
                e2e_s=spec.e2e_ms / 1000 if spec and spec.e2e_ms else None,
                target=spec.target if spec else 0.95,
            )
            self._objectives[model] = found
        return found

    def observe(self, ctx: RequestContext, record: RequestRecord) -> None:
        """Count a finished request in the metrics and its model's SLO window."""
        # the record already holds the timings and the outcome class; read them, not work them out
        ttft = record.ttft_ms / 1000.0 if record.ttft_ms is not None else None
        tpot_ms = record.extra.get("tpot_ms")
        tpot = tpot_ms / 1000.0 if isinstance(tpot_ms, int | float) else None
        outcome = _outcome(record)
        self.metrics.observe(ctx, outcome, ttft, tpot, record)
        if ctx.model in self._snapshot.current.models:
            e2e = record.latency_ms / 1000.0
            if ttft is None and tpot is None and record.completion_tokens:
                # a complete answer is judged by its time per output token, never by a first token
                # it did not show: a long answer is not a slow one
                tpot = e2e / (record.completion_tokens + 1)
            self.slo.observe(ctx.model, self.objectives(ctx.model), outcome, ttft, tpot, e2e)

    def slo_reports(self) -> list[dict[str, object]]:
        return [self.slo.report(name, self.objectives(name)) for name in self._snapshot.current.models]


def _outcome(record: RequestRecord) -> OutcomeClass:
    found = record.outcome
    if found in OUTCOME_CLASSES:
        return found
    return classify_status(record.status, record.error_kind)
