"""Showback and chargeback: spend over a time range by team, key, user, model or pool.

Sums come from the request log, grouped by the database (:meth:`SpendRepository.grouped`). A pool
is not a column of the log: spend is grouped by deployment and each deployment is put in the pool
the current configuration gives it (``(no pool)`` when it has none; ``(unknown)`` for a deployment
the configuration no longer has). Requests refused before any deployment was chosen group as
``(none)``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from interlock.routing.snapshot import RoutingSnapshot
from interlock.store import SpendLine, Store

__all__ = ["SPEND_GROUPINGS", "render_csv", "spend_report"]

SPEND_GROUPINGS = ("team", "key", "user", "model", "pool")
_FIELDS = ("name", "requests", "errors", "prompt_tokens", "completion_tokens", "cached_tokens", "cost_usd")


async def spend_report(
    store: Store, snapshot: RoutingSnapshot, by: str, since: datetime, until: datetime | None
) -> dict[str, Any]:
    """``{"by", "since", "until", "rows": [...], "total": {...}}``, rows by cost, highest first."""
    if by not in SPEND_GROUPINGS:
        raise ValueError(f"'by' must be one of {', '.join(SPEND_GROUPINGS)}")
    if by == "pool":
        lines = _pools(await store.spend.grouped("deployment", since, until), snapshot)
    else:
        lines = list(await store.spend.grouped(by, since, until))
    total = await store.spend.total(since, until)
    return {
        "by": by,
        "since": since.isoformat(),
        "until": until.isoformat() if until else None,
        "rows": [_row(line, "(none)") for line in lines],
        "total": _row(total, "total"),
    }


def _pools(lines: Sequence[SpendLine], snapshot: RoutingSnapshot) -> list[SpendLine]:
    pool_of = {d.id: d.pool or "(no pool)" for route in snapshot.models.values() for d in route.deployments}
    merged: dict[str, SpendLine] = {}
    for line in lines:
        name = "(none)" if line.name is None else pool_of.get(line.name, "(unknown)")
        found = merged.get(name)
        merged[name] = line if found is None else _add(found, line, name)
    return sorted(
        (SpendLine(name, *_values(line)) for name, line in merged.items()),
        key=lambda line: (-line.cost, -line.requests, line.name or ""),
    )


def _values(line: SpendLine) -> tuple[int, int, int, int, int, float]:
    return (
        line.requests,
        line.errors,
        line.prompt_tokens,
        line.completion_tokens,
        line.cached_tokens,
        line.cost,
    )


def _add(a: SpendLine, b: SpendLine, name: str) -> SpendLine:
    return SpendLine(
        name,
        requests=a.requests + b.requests,
        errors=a.errors + b.errors,
        prompt_tokens=a.prompt_tokens + b.prompt_tokens,
        completion_tokens=a.completion_tokens + b.completion_tokens,
        cached_tokens=a.cached_tokens + b.cached_tokens,
        cost=a.cost + b.cost,
    )


def _row(line: SpendLine, none_name: str) -> dict[str, Any]:
    return {
        "name": line.name if line.name is not None else none_name,
        "requests": line.requests,
        "errors": line.errors,
        "prompt_tokens": line.prompt_tokens,
        "completion_tokens": line.completion_tokens,
        "cached_tokens": line.cached_tokens,
        "cost_usd": round(line.cost, 6),
    }


def render_csv(report: dict[str, Any]) -> str:
    """The report's rows (and a total row) as CSV, a header first."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[report["by"], *_FIELDS[1:]], lineterminator="\n")
    writer.writeheader()
    for row in [*report["rows"], report["total"]]:
        writer.writerow({report["by"]: row["name"], **{k: row[k] for k in _FIELDS[1:]}})
    return out.getvalue()
