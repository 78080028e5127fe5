"""The numbers of an operations report over a time range, computed by the database.

Performance, cost and top consumers come from the store's traffic and spend repositories (grouped
queries: a week of requests never leaves the database row by row). This module adds what they do not
count, also with grouped queries per time bucket: requests that met their model's SLO (success, time
to first token and end-to-end latency within the objectives; TPOT is not in the log's columns and is
not judged here), requests that needed a fallback (more than one attempt), 5xx answers, and which
deployments failed the attempts that fallbacks recovered from.

Error shares count failures of the gateway and its backends only; the callers' own mistakes and the
gateway's refusals are counted apart and left out of error shares and SLO compliance (see
:mod:`interlock.telemetry.outcome`).

:func:`build_report` returns plain JSON-ready data; renderers (Markdown, HTML) live elsewhere.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, select

from interlock.config.schema import SloSpec
from interlock.store import SpendLine, Store, TrafficBucket, TrafficSeries
from interlock.store.engine import Database
from interlock.store.schema import request_log
from interlock.store.traffic import outcome_expression

__all__ = ["BucketOutcomes", "OutcomeRepository", "build_report"]

_MAX_FALLBACK_ROWS = 20_000
_TOP = 10


_JUDGED = ("ok", "upstream_error", "gateway_error")
_NO_VERDICT = ("ok", "cancelled", "abandoned")
"""Attempt outcomes that are no failure: an answer, a hedge that lost, a stream its client left."""


@dataclass(frozen=True, slots=True)
class BucketOutcomes:
    """Per model, in one time bucket: requests, those an SLO judges, SLO-met, fallbacks, 5xx."""

    requests: int = 0
    met: int = 0
    fallbacks: int = 0
    server_errors: int = 0
    judged: int = 0


class OutcomeRepository:
    """SLO, fallback and 5xx counts over the ``request_log`` table."""

    __slots__ = ("_db",)

    def __init__(self, db: Database) -> None:
        self._db = db

    async def by_model(
        self, since: datetime, until: datetime, slos: Mapping[str, SloSpec]
    ) -> dict[str, BucketOutcomes]:
        """Counts per model for ``[since, until)``; ``slos`` gives each model's objectives."""
        c = request_log.c
        query = (
            select(
                c.model,
                func.count(),
                func.coalesce(func.sum(_met(slos)), 0),
                func.coalesce(func.sum(case((self._attempt_count() > 1, 1), else_=0)), 0),
                func.coalesce(func.sum(case((c.status >= 500, 1), else_=0)), 0),
                func.coalesce(func.sum(case((outcome_expression().in_(_JUDGED), 1), else_=0)), 0),
            )
            .where(c.created_at >= since, c.created_at < until)
            .group_by(c.model)
        )
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        return {
            str(m): BucketOutcomes(int(n), int(met), int(fb), int(err), int(judged))
            for m, n, met, fb, err, judged in rows
        }

    async def failed_attempts(self, since: datetime, until: datetime) -> Counter[tuple[str, str]]:
        """(deployment, outcome) of the failed attempts of requests that needed a fallback."""
        c = request_log.c
        query = (
            select(c.attempts)
            .where(c.created_at >= since, c.created_at < until, self._attempt_count() > 1)
            .limit(_MAX_FALLBACK_ROWS)
        )
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        counts: Counter[tuple[str, str]] = Counter()
        for (attempts,) in rows:
            for attempt in attempts or ():
                if isinstance(attempt, dict) and attempt.get("outcome") not in _NO_VERDICT:
                    counts[(str(attempt.get("deployment")), str(attempt.get("outcome")))] += 1
        return counts

    def _attempt_count(self) -> ColumnElement[Any]:
        attempts = request_log.c.attempts
        if self._db.backend == "postgresql":
            return func.jsonb_array_length(attempts)
        return func.json_array_length(attempts)


def _met(slos: Mapping[str, SloSpec]) -> ColumnElement[Any]:
    """1 for a request that met its model's objectives (the SLO tracker's rule, TPOT aside)."""
    c = request_log.c
    whens = []
    for model, slo in slos.items():
        conditions = [c.model == model, c.status == 200]
        if slo.ttft_ms is not None:
            conditions.append(func.coalesce(c.ttft_ms, c.latency_ms) <= slo.ttft_ms)
        if slo.e2e_ms is not None:
            conditions.append(c.latency_ms <= slo.e2e_ms)
        whens.append((and_(*conditions), 1))
    return case(*whens, else_=0) if whens else case((c.status == 200, 0), else_=0)


async def build_report(
    store: Store,
    outcomes: OutcomeRepository,
    slos: Mapping[str, SloSpec],
    since: datetime,
    until: datetime,
    bucket_s: int = 86_400,
) -> dict[str, Any]:
    """Everything a report shows, for ``[since, until)`` in buckets of ``bucket_s`` seconds; ``since``
    is moved back to the start of its bucket (a day starts at midnight UTC)."""
    since = datetime.fromtimestamp(since.timestamp() // bucket_s * bucket_s, UTC)
    spend = await store.spend.summary(since, until, limit=100)
    models = sorted({line.name for line in spend.by_model if line.name} | set(slos))
    series = {m: await store.traffic.series(since, bucket_s, until=until, model=m) for m in models}
    overall = await store.traffic.series(since, bucket_s, until=until)
    buckets = [b.start for b in overall.buckets]
    per_bucket = [
        await outcomes.by_model(start, min(start + timedelta(seconds=bucket_s), until), slos)
        for start in buckets
    ]
    totals = _merge([o for bucket in per_bucket for o in bucket.values()])
    names = {k.id: k.name for k in await store.keys.list(include_revoked=True)}
    failures = await outcomes.failed_attempts(since, until)
    whole = overall.totals()
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "bucket_s": bucket_s,
        "totals": {
            "requests": whole.requests,
            **_classes(whole),
            "server_errors": totals.server_errors,
            "fallbacks": totals.fallbacks,
            "cost": round(whole.cost, 6),
            "tokens": whole.tokens,
            **_percentiles(overall),
        },
        "models": [
            _model_view(m, series[m], [bucket.get(m, BucketOutcomes()) for bucket in per_bucket], slos.get(m))
            for m in models
            if series[m].totals().requests or m in slos
        ],
        "failing_deployments": [
            {"deployment": d, "outcome": o, "count": n} for (d, o), n in failures.most_common(_TOP)
        ],
        "consumers": {
            "keys": [_consumer(line, names.get(line.name or "")) for line in spend.by_key[:_TOP]],
            "teams": [_consumer(line, None) for line in spend.by_team[:_TOP]],
        },
    }


def _merge(items: Sequence[BucketOutcomes]) -> BucketOutcomes:
    return BucketOutcomes(
        requests=sum(o.requests for o in items),
        met=sum(o.met for o in items),
        fallbacks=sum(o.fallbacks for o in items),
        server_errors=sum(o.server_errors for o in items),
        judged=sum(o.judged for o in items),
    )


def _classes(bucket: TrafficBucket) -> dict[str, int]:
    """Failures, and the requests no error share judges, of one bucket (or a whole range)."""
    return {
        "errors": bucket.errors,
        "judged": bucket.judged,
        "upstream_errors": bucket.upstream_errors,
        "gateway_errors": bucket.gateway_errors,
        "client_errors": bucket.client_errors,
        "refused": bucket.refused,
    }


def _percentiles(series: TrafficSeries) -> dict[str, float | None]:
    whole = series.totals()
    return {
        "p50_ms": whole.latency_ms(0.5),
        "p95_ms": whole.latency_ms(0.95),
        "p99_ms": whole.latency_ms(0.99),
    }


def _compliance(o: BucketOutcomes) -> float | None:
    return round(o.met / o.judged, 4) if o.judged else None


def _model_view(
    model: str, series: TrafficSeries, buckets: Sequence[BucketOutcomes], slo: SloSpec | None
) -> dict[str, Any]:
    whole = series.totals()
    outcomes = _merge(buckets)
    return {
        "model": model,
        "requests": whole.requests,
        **_classes(whole),
        "server_errors": outcomes.server_errors,
        "fallbacks": outcomes.fallbacks,
        "cost": round(whole.cost, 6),
        "tokens": whole.tokens,
        **_percentiles(series),
        "slo": None
        if slo is None
        else {
            "target": slo.target,
            "objectives_ms": {"ttft": slo.ttft_ms, "e2e": slo.e2e_ms},
            "met": outcomes.met,
            "compliance": _compliance(outcomes),
        },
        "buckets": [
            {
                "start": bucket.start.isoformat(),
                "requests": bucket.requests,
                "errors": bucket.errors,
                "judged": bucket.judged,
                "cost": round(bucket.cost, 6),
                "p95_ms": bucket.latency_ms(0.95),
                "fallbacks": o.fallbacks,
                "compliance": _compliance(o),
            }
            for bucket, o in zip(series.buckets, buckets, strict=False)
        ],
    }


def _consumer(line: SpendLine, name: str | None) -> dict[str, Any]:
    return {
        "id": line.name,
        "name": name,
        "requests": line.requests,
        "errors": line.errors,
        "tokens": line.tokens,
        "cost": round(line.cost, 6),
    }
