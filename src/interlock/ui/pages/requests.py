"""The request explorer: recent requests with filters, and each request's attempts as a waterfall
with the routing decisions behind them.

A virtual key sees only requests made with it; asking for another key's request by id answers "not
found", exactly as for a request that does not exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from interlock.core.errors import InvalidRequest
from interlock.store import RequestRecord
from interlock.telemetry.outcome import FAILURES, classify_status
from interlock.telemetry.request_log import parse_since, record_view, request_filters
from interlock.ui.charts import ERROR_COLOR, chart, series
from interlock.ui.decisions import decision_views
from interlock.ui.sections import Section, SectionContext
from interlock.ui.waterfall import waterfall

__all__ = ["requests_section"]

PAGE_SIZE = 50
SINCE_CHOICES = {"15m": "Last 15 minutes", "1h": "Last hour", "24h": "Last 24 hours", "7d": "Last 7 days"}
STATUS_CHOICES = {
    "": "Any status",
    "ok": "Succeeded",
    "error": "Failed (any)",
    "failures": "Errors: upstream or gateway",
    "client_error": "Caller's 4xx",
    "refused": "Refused (429)",
}
_OUTCOME_FILTERS: dict[str, tuple[str, ...]] = {
    "failures": FAILURES,
    "client_error": ("client_error",),
    "refused": ("refused",),
}
"""Status choices that filter on the outcome class rather than the HTTP status."""


async def requests_data(ctx: SectionContext) -> dict[str, Any]:
    params = ctx.params
    since = params.get("since") or "1h"
    if since not in SINCE_CHOICES:
        since = "1h"
    status = params.get("status") or ""
    if status not in STATUS_CHOICES and not status.isdigit():
        status = ""
    model = params.get("model") or None
    key_id = ctx.viewer.scope_key_id or params.get("key_id") or None
    outcomes = _OUTCOME_FILTERS.get(status)
    filters = request_filters(None if outcomes else status or None, since)
    before = _before(params.get("before"))
    records = await ctx.store.requests.query(
        model=model, key_id=key_id, outcomes=outcomes, before=before, limit=PAGE_SIZE, **filters
    )
    rows = [_row(record) for record in records]
    keys = await _keys(ctx) if ctx.viewer.is_master else {}
    return {
        "rows": rows,
        "filters": {"since": since, "status": status, "model": model or "", "key_id": key_id or ""},
        "choices": {
            "since": SINCE_CHOICES,
            "status": STATUS_CHOICES,
            "models": sorted(ctx.runtime.snapshot.current.models),
            "keys": keys,
        },
        "next_before": records[-1].created_at.isoformat() if len(records) == PAGE_SIZE else None,
        "paged": before is not None,
        "summary": _summary(records),
        "charts": {"latency": _latency_chart(records)},
    }


async def request_detail(ctx: SectionContext, request_id: str) -> Mapping[str, Any] | None:
    record = await ctx.store.requests.get(request_id)
    scope = ctx.viewer.scope_key_id
    if record is None or (scope is not None and record.key_id != scope):
        return None
    view = record_view(record)
    return {
        "request": view,
        "outcome": outcome_of(record),
        "waterfall": waterfall(view),
        "decisions": decision_views(view["decisions"], view["attempts"]),
        "key_name": await _key_name(ctx, record),
    }


def outcome_of(record: RequestRecord) -> str:
    """The record's outcome class (guessed from its status for a record written without one)."""
    return record.outcome or classify_status(record.status, record.error_kind)


def _before(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parse_since(value)
    except InvalidRequest:
        return None


def _row(record: RequestRecord) -> dict[str, Any]:
    outcomes = [str(a.get("outcome", "")) for a in record.attempts]
    return {
        "request_id": record.request_id,
        "created_at": record.created_at,
        "key_id": record.key_id,
        "model": record.model,
        "deployment": record.deployment,
        "status": record.status,
        "error_kind": record.error_kind,
        "outcome": outcome_of(record),
        "stream": record.stream,
        "attempts": len(record.attempts),
        "fallback": len(record.attempts) > 1,
        "outcomes": outcomes,
        "ttft_ms": record.ttft_ms,
        "latency_ms": record.latency_ms,
        "tokens": record.prompt_tokens + record.completion_tokens,
        "cost": record.cost,
    }


def _summary(records: list[RequestRecord]) -> dict[str, Any]:
    failed = sum(1 for r in records if r.status >= 400)
    return {
        "shown": len(records),
        "failed": failed,
        "errors": sum(1 for r in records if outcome_of(r) in FAILURES),
        "retried": sum(1 for r in records if len(r.attempts) > 1),
        "cost": sum(r.cost for r in records),
    }


def _latency_chart(records: list[RequestRecord]) -> dict[str, Any]:
    ordered = sorted(records, key=lambda r: r.created_at)
    ok = [r.latency_ms if r.status < 400 else None for r in ordered]
    failed = [r.latency_ms if r.status >= 400 else None for r in ordered]
    lines = [series("succeeded (ms)", ok, index=0), series("failed (ms)", failed, ERROR_COLOR)]
    return chart("scatter", [r.created_at for r in ordered], lines, unit="ms", height=170)


async def _keys(ctx: SectionContext) -> dict[str, str]:
    keys = {"master": "master key"}
    for record in await ctx.store.keys.list(include_revoked=True):
        keys[record.id] = record.name
    return keys


async def _key_name(ctx: SectionContext, record: RequestRecord) -> str | None:
    if record.key_id is None:
        return None
    if record.key_id == "master":
        return "master key"
    if not ctx.viewer.is_master:
        return ctx.viewer.name
    key = await ctx.store.keys.get(record.key_id)
    return key.name if key is not None else None


requests_section = Section(
    path="requests",
    title="Requests",
    template="requests.html",
    data=requests_data,
    order=40,
    detail=request_detail,
    detail_template="request_detail.html",
)
