"""Overview: traffic, errors, time to first token, SLO compliance and goodput, spend today.

The error rate counts failures of the gateway and its backends among the requests they could hit;
the callers' own 4xx and the gateway's refusals (429) are shown beside it, never in it (see
:mod:`interlock.telemetry.outcome`). Rates, errors, latency and spend come from the request log, so
they cover every gateway process that shares the store and can be narrowed to one key (a virtual key
sees only its own). SLO compliance and goodput per model come from this process's rolling SLO window
— the numbers of ``GET /admin/slo`` — and are shown to operators only, since they describe the whole
fleet.
"""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

from interlock.store import TrafficBucket, TrafficSeries
from interlock.ui.charts import (
    CLIENT_ERROR_COLOR,
    ERROR_COLOR,
    REFUSED_COLOR,
    chart,
    color,
    per_second,
    series,
    time_window,
)
from interlock.ui.sections import Section, SectionContext

__all__ = ["WINDOW_S", "overview_section"]

WINDOW_S = 15 * 60
"""How far back the charts look (less for a gateway younger than that: see ``time_window``)."""
RATE_WINDOW_S = 60
"""Requests per second are measured over the last minute."""
GAUGE_TARGET = 0.95
"""The fleet gauge is green at or above 95 %, yellow from 90 %, red below (per-model pills use each
model's own target)."""
SUMMARY_WINDOW_S = 300
"""Error rate and TTFT percentiles cover the last five minutes (the SLO window)."""


async def overview_data(ctx: SectionContext) -> dict[str, Any]:
    scope = ctx.viewer.scope_key_id
    earliest = await ctx.store.traffic.earliest(ctx.now - timedelta(seconds=WINDOW_S), key_id=scope)
    since, bucket_s = time_window(ctx.now, earliest, longest_s=WINDOW_S)
    traffic = await ctx.store.traffic.series(since, bucket_s, until=ctx.now, key_id=scope)
    midnight = ctx.now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    today = await ctx.store.spend.total(midnight, key_id=scope)
    recent = traffic.totals(last_s=SUMMARY_WINDOW_S)
    data: dict[str, Any] = {
        "scope": "your key" if scope else "all keys",
        "rps": _rate(traffic, RATE_WINDOW_S),
        "requests_5m": recent.requests,
        "errors_5m": recent.errors,
        "judged_5m": recent.judged,
        "error_rate": recent.error_rate,
        "outcomes_5m": {
            "upstream_error": recent.upstream_errors,
            "gateway_error": recent.gateway_errors,
            "client_error": recent.client_errors,
            "refused": recent.refused,
            "cancelled": recent.cancelled,
        },
        "ttft": {f"p{q}": recent.latency_ms(q / 100) for q in (50, 95, 99)},
        "spend_today": today.cost,
        "requests_today": today.requests,
        "tokens_today": today.tokens,
        "window_s": (ctx.now - traffic.since).total_seconds(),
        "bucket_s": traffic.bucket_s,
        "charts": _charts(traffic),
        "slo": None,
    }
    if ctx.viewer.can_operate:
        data["slo"] = _slo(ctx.runtime.telemetry.slo_reports())
    return data


def _rate(traffic: TrafficSeries, last_s: float) -> float:
    """Requests per second over the last ``last_s`` seconds, counting only time that has passed."""
    merged = traffic.totals(last_s=last_s)
    elapsed = (traffic.until - merged.start).total_seconds()
    return merged.requests / elapsed if elapsed > 0 else 0.0


def _per_second(bucket: TrafficBucket, traffic: TrafficSeries, value: int) -> float | None:
    end = min(bucket.start + timedelta(seconds=traffic.bucket_s), traffic.until)
    return per_second(value, (end - bucket.start).total_seconds(), traffic.bucket_s)


def _charts(traffic: TrafficSeries) -> dict[str, Any]:
    # The bucket in progress is drawn as its rate over the seconds it has had, once it has had half.
    buckets = traffic.buckets
    starts = [b.start for b in buckets]
    lines = [
        series("requests/s", [_per_second(b, traffic, b.requests) for b in buckets], color(0)),
        series("errors/s", [_per_second(b, traffic, b.errors) for b in buckets], ERROR_COLOR),
        series(
            "caller 4xx/s", [_per_second(b, traffic, b.client_errors) for b in buckets], CLIENT_ERROR_COLOR
        ),
        series("refused/s", [_per_second(b, traffic, b.refused) for b in buckets], REFUSED_COLOR),
    ]
    throughput = chart("area", starts, lines, unit="/s")
    latency_lines = [
        series(f"p{q}", [b.latency_ms(q / 100) for b in buckets], color(i))
        for i, q in enumerate((50, 95, 99))
    ]
    latency = chart("line", starts, latency_lines, unit="ms")
    return {"throughput": throughput, "ttft": latency}


def _slo(reports: list[dict[str, Any]]) -> dict[str, Any]:
    requests = sum(int(r["requests"]) for r in reports)
    met = sum(int(r["met"]) for r in reports)
    return {
        "compliance": met / requests if requests else None,
        "target": GAUGE_TARGET,
        "goodput_rps": round(sum(float(r["goodput_rps"]) for r in reports), 4),
        "requests": requests,
        "met": met,
        "window_s": reports[0]["window_s"] if reports else SUMMARY_WINDOW_S,
        "models": reports,
    }


overview_section = Section(
    path="overview",
    title="Overview",
    template="overview.html",
    data=overview_data,
    order=10,
)
