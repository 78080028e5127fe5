"""Prometheus metrics with bounded label cardinality.

Labels are drawn only from configuration (model and deployment names) and small fixed sets (status
class, outcome class, error kind, attempt outcome); a model name the config does not know is counted
as ``unknown``, and no metric is labelled by key, user or request, so a million callers make no new
series. Gauges of live state (breakers, concurrency, the request-log buffer) are read at scrape time
by a collector instead of being updated on the request path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from interlock.core.context import RequestContext
from interlock.routing.snapshot import SnapshotRef
from interlock.routing.state import RoutingState
from interlock.store import RequestRecord, WriterStats
from interlock.telemetry.outcome import OutcomeClass

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_TPOT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0)
_OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05)
_BREAKER_VALUES = {"closed": 0.0, "half_open": 1.0, "open": 2.0}


class Metrics:
    """Every metric the gateway exports, in one registry of its own."""

    def __init__(
        self, snapshot: SnapshotRef, state: RoutingState, writer_stats: Callable[[], WriterStats | None]
    ):
        disable_created_metrics()  # type: ignore[no-untyped-call]  # one series per counter, not two
        self.registry = CollectorRegistry(auto_describe=True)
        self._snapshot = snapshot
        # prometheus_client's labels() validates and locks on every call (a few µs); the label sets
        # here are bounded (configured models and deployments, status classes, error kinds), so each
        # child is looked up once and kept.
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        r = self.registry
        self.requests = Counter(
            "interlock_requests",
            "Requests by model, operation, status class and outcome class.",
            ["model", "operation", "status_class", "outcome"],
            registry=r,
        )
        self.errors = Counter(
            "interlock_request_errors",
            "Requests that did not succeed, by error kind and outcome class.",
            ["model", "kind", "outcome"],
            registry=r,
        )
        self.duration = Histogram(
            "interlock_request_duration_seconds",
            "End-to-end request latency.",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "interlock_time_to_first_token_seconds",
            "Time to first token of streamed answers.",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.tpot = Histogram(
            "interlock_time_per_output_token_seconds",
            "Time per output token after the first.",
            ["model"],
            buckets=_TPOT_BUCKETS,
            registry=r,
        )
        self.overhead = Histogram(
            "interlock_gateway_overhead_seconds",
            "Time spent in the gateway, upstream waits excluded.",
            buckets=_OVERHEAD_BUCKETS,
            registry=r,
        )
        self.tokens = Counter("interlock_tokens", "Tokens by model and type.", ["model", "type"], registry=r)
        self.cost = Counter("interlock_cost_usd", "Spend in US dollars.", ["model"], registry=r)
        self.attempts = Counter(
            "interlock_attempts",
            "Upstream attempts by deployment and outcome.",
            ["model", "deployment", "outcome"],
            registry=r,
        )
        self.fallbacks = Counter(
            "interlock_fallbacks", "Requests that needed more than one attempt.", ["model"], registry=r
        )
        self.hedges = Counter(
            "interlock_hedged_requests", "Requests that raced a second deployment.", ["model"], registry=r
        )
        r.register(_LiveState(snapshot, state, writer_stats))

    def _child(self, metric: Counter | Histogram, *labels: str) -> Any:
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def observe(
        self,
        ctx: RequestContext,
        outcome: OutcomeClass,
        ttft_s: float | None,
        tpot_s: float | None,
        record: RequestRecord,
    ) -> None:
        """Count one finished request (``record`` is its request-log row)."""
        model = ctx.model if ctx.model in self._snapshot.current.models else "unknown"
        child = self._child
        child(self.requests, model, ctx.operation, f"{ctx.status // 100}xx", outcome).inc()
        if ctx.error is not None:
            child(self.errors, model, ctx.error.kind, outcome).inc()
        elapsed = (ctx.finished_at or ctx.received_at) - ctx.received_at
        child(self.duration, model).observe(elapsed)
        if ctx.reply_overhead_ms is not None:  # the chain ran (a client gone before has none)
            self.overhead.observe(record.overhead_ms / 1000.0)
        if ttft_s is not None:
            child(self.ttft, model).observe(ttft_s)
        if tpot_s is not None:
            child(self.tpot, model).observe(tpot_s)
        usage = ctx.usage
        if usage is not None:
            child(self.tokens, model, "prompt").inc(usage.prompt_tokens)
            child(self.tokens, model, "completion").inc(usage.completion_tokens)
            child(self.tokens, model, "cached").inc(usage.cached_tokens)
        if record.cost:
            child(self.cost, model).inc(record.cost)
        for attempt in ctx.attempts:
            deployment_model = attempt.deployment.split("/", 1)[0]
            child(self.attempts, deployment_model, attempt.deployment, attempt.outcome).inc()
        if len(ctx.attempts) > 1:
            child(self.fallbacks, model).inc()
        if ctx.hedged:
            child(self.hedges, model).inc()


class _LiveState(Collector):
    """Breakers, concurrency and the request-log buffer, read when scraped."""

    def __init__(
        self, snapshot: SnapshotRef, state: RoutingState, writer_stats: Callable[[], WriterStats | None]
    ) -> None:
        self._snapshot = snapshot
        self._state = state
        self._writer_stats = writer_stats

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        breaker = GaugeMetricFamily(
            "interlock_deployment_breaker_state",
            "Circuit breaker: 0 closed, 1 half-open, 2 open.",
            labels=["deployment"],
        )
        available = GaugeMetricFamily(
            "interlock_deployment_available",
            "1 when the deployment may receive traffic.",
            labels=["deployment"],
        )
        in_flight = GaugeMetricFamily(
            "interlock_deployment_in_flight", "Requests in flight.", labels=["deployment"]
        )
        limit = GaugeMetricFamily(
            "interlock_deployment_concurrency_limit", "Adaptive concurrency limit.", labels=["deployment"]
        )
        queued = GaugeMetricFamily(
            "interlock_deployment_queued", "Requests waiting for a slot.", labels=["deployment"]
        )
        rejected = CounterMetricFamily(
            "interlock_deployment_overload_rejections",
            "Requests refused with 429 for overload.",
            labels=["deployment"],
        )
        for route in self._snapshot.current.models.values():
            for deployment in route.deployments:
                b, lim = self._state.snapshot_of(deployment.id)
                state = b.snapshot().state if b is not None else "closed"
                usable = state != "open" and deployment.id not in self._state.disabled
                usable = usable and deployment.id not in self._state.unhealthy
                breaker.add_metric([deployment.id], _BREAKER_VALUES.get(state, 0.0))
                available.add_metric([deployment.id], 1.0 if usable else 0.0)
                in_flight.add_metric([deployment.id], float(self._state.load.get(deployment.id).in_flight))
                limit.add_metric([deployment.id], float(int(lim.limit)) if lim is not None else 0.0)
                queued.add_metric([deployment.id], float(lim.queued) if lim is not None else 0.0)
                rejected.add_metric([deployment.id], float(lim.rejected) if lim is not None else 0.0)
        yield from (breaker, available, in_flight, limit, queued, rejected)
        stats = self._writer_stats()
        if stats is not None:
            dropped = CounterMetricFamily(
                "interlock_request_log_dropped_records",
                "Request records dropped because the store lagged or failed.",
            )
            dropped.add_metric([], float(stats.dropped))
            pending = GaugeMetricFamily(
                "interlock_request_log_pending_records", "Request records waiting to be written."
            )
            pending.add_metric([], float(stats.pending))
            yield dropped
            yield pending
