"""Spend: cost, tokens and requests over a chosen range, over time and by key, model and team.

A virtual key sees its own spend only. Teams appear once keys carry a team; budgets will join the
same tables when they exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from interlock.store import SpendLine, SpendSummary
from interlock.ui.charts import chart, color, series, time_window
from interlock.ui.sections import Section, SectionContext

__all__ = ["RANGES", "spend_section"]

RANGES: dict[str, str] = {
    "today": "Today (UTC)",
    "24h": "Last 24 hours",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
}
"""Range name → label. The chart's buckets follow the range (about 60 of them), and a gateway
younger than the range gets a chart of its own lifetime."""


def _since(name: str, now: datetime) -> datetime:
    if name == "today":
        return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    amount = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}[name]
    return now - amount


async def spend_data(ctx: SectionContext) -> dict[str, Any]:
    chosen = ctx.params.get("range", "today")
    if chosen not in RANGES:
        chosen = "today"
    label = RANGES[chosen]
    since = _since(chosen, ctx.now)
    scope = ctx.viewer.scope_key_id
    summary = await ctx.store.spend.summary(since, ctx.now, key_id=scope, limit=50)
    earliest = await ctx.store.traffic.earliest(since, key_id=scope)
    longest = (ctx.now - since).total_seconds()
    chart_since, bucket_s = time_window(ctx.now, earliest, longest_s=longest, points=60)
    traffic = await ctx.store.traffic.series(chart_since, bucket_s, until=ctx.now, key_id=scope)
    names = await _key_names(ctx, summary)
    total = summary.total
    over_time = chart(
        "bars",
        [b.start for b in traffic.buckets],
        [series("spend (USD)", [round(b.cost, 8) for b in traffic.buckets], color(0))],
        unit="$",
        height=210,
    )
    return {
        "range": chosen,
        "ranges": RANGES,
        "bucket": _duration(bucket_s),
        "range_label": label,
        "since": since,
        "scope": "your key" if scope else "all keys",
        "total": _line_view(total, total.cost),
        "cost_per_request": total.cost / total.requests if total.requests else None,
        "by_model": _lines(summary.by_model, total.cost),
        "by_key": _lines(summary.by_key, total.cost, names),
        "by_team": _lines(summary.by_team, total.cost),
        "charts": {"over_time": over_time},
    }


def _duration(seconds: int) -> str:
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


async def _key_names(ctx: SectionContext, summary: SpendSummary) -> dict[str, str]:
    names = {"master": "master key"}
    if not ctx.viewer.is_master:
        return {**names, ctx.viewer.key_id: ctx.viewer.name}
    if any(line.name not in (None, "master") for line in summary.by_key):
        for record in await ctx.store.keys.list(include_revoked=True):
            names[record.id] = record.name
    return names


def _lines(
    lines: Sequence[SpendLine], total_cost: float, names: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    views = []
    for line in lines:
        view = _line_view(line, total_cost)
        if names is not None:
            view["label"] = names.get(line.name or "", line.name or "(no key)")
        views.append(view)
    return views


def _line_view(line: SpendLine, total_cost: float) -> dict[str, Any]:
    return {
        "name": line.name,
        "label": line.name or "(none)",
        "requests": line.requests,
        "errors": line.errors,
        "prompt_tokens": line.prompt_tokens,
        "completion_tokens": line.completion_tokens,
        "cached_tokens": line.cached_tokens,
        "tokens": line.tokens,
        "cost": round(line.cost, 10),
        "share": line.cost / total_cost if total_cost > 0 else 0.0,
    }


spend_section = Section(
    path="spend",
    title="Spend",
    template="spend.html",
    data=spend_data,
    order=30,
    refresh_s=10.0,
)
