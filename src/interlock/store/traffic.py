"""Traffic over time from the request log: requests, errors, spend and a latency histogram per bucket.

The database does the grouping — by time bucket, and by latency bucket of each successful request —
so a chart of the last hour costs one range scan and returns at most (time buckets x latency
buckets) small rows, however many requests there were. Percentiles are then estimated from the
histogram, as Prometheus's ``histogram_quantile`` does: the latency buckets grow by 15 % each, so an
estimate is within about 15 % of the exact value.

The latency of a successful request is its time to first token, or for a complete (non-streamed)
answer the time to the whole answer — the same rule the SLO tracker uses.

Requests that did not succeed are counted by outcome class (``request_log.outcome``; see
:mod:`interlock.telemetry.outcome`): ``errors`` are only the failures of the gateway and its
backends; the caller's own mistakes, the gateway's refusals and cancelled requests have counts of
their own and are left out of error rates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, Integer, and_, case, cast, func, literal, select

from interlock.core.context import CLIENT_CLOSED
from interlock.store.engine import Database
from interlock.store.schema import request_log

__all__ = [
    "LATENCY_BOUNDS_MS",
    "BreakdownColumn",
    "TrafficBreakdown",
    "TrafficBucket",
    "TrafficRepository",
    "TrafficSeries",
    "outcome_expression",
    "quantile",
]

BreakdownColumn = Literal["deployment", "model", "key_id"]

_MAX_BUCKETS = 2_000
_CLASS_FIELDS = {
    "upstream_error": "upstream_errors",
    "gateway_error": "gateway_errors",
    "client_error": "client_errors",
    "refused": "refused",
    "cancelled": "cancelled",
}
"""Outcome class → the :class:`TrafficBucket` field that counts it (``ok`` is what is left)."""


def _bounds(first: float, last: float, ratio: float) -> tuple[float, ...]:
    bounds, value = [], first
    while value < last:
        bounds.append(float(f"{value:.3g}"))
        value *= ratio
    bounds.append(last)
    return tuple(bounds)


LATENCY_BOUNDS_MS = _bounds(1.0, 600_000.0, 1.15)
"""Upper edges of the latency buckets, in milliseconds; a last, open bucket holds the rest."""


def quantile(counts: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a histogram over :data:`LATENCY_BOUNDS_MS`, in milliseconds."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            if index >= len(LATENCY_BOUNDS_MS):
                return LATENCY_BOUNDS_MS[-1]
            lower = LATENCY_BOUNDS_MS[index - 1] if index else 0.0
            upper = LATENCY_BOUNDS_MS[index]
            return round(lower + (upper - lower) * (rank - seen) / count, 3)
        seen += count
    return LATENCY_BOUNDS_MS[-1]


@dataclass(frozen=True, slots=True)
class TrafficBucket:
    """What happened in ``[start, start + bucket_s)``.

    ``errors`` counts failures (``upstream_errors`` + ``gateway_errors``); ``client_errors``,
    ``refused`` and ``cancelled`` are the requests no error rate or SLO judges.
    """

    start: datetime
    requests: int = 0
    errors: int = 0
    cost: float = 0.0
    tokens: int = 0
    latency_counts: tuple[int, ...] = ()
    """Successful requests per latency bucket (see :data:`LATENCY_BOUNDS_MS`); empty when none."""
    upstream_errors: int = 0
    gateway_errors: int = 0
    client_errors: int = 0
    refused: int = 0
    cancelled: int = 0

    @property
    def judged(self) -> int:
        """Requests an error rate counts: answers and failures."""
        return self.requests - self.client_errors - self.refused - self.cancelled

    @property
    def error_rate(self) -> float | None:
        """Failures among the judged requests, or ``None`` when there were none."""
        judged = self.judged
        return self.errors / judged if judged > 0 else None

    def latency_ms(self, q: float) -> float | None:
        """Estimated ``q`` quantile of the bucket's latency, or ``None`` when nothing succeeded."""
        return quantile(self.latency_counts, q) if self.latency_counts else None


@dataclass(frozen=True, slots=True)
class TrafficSeries:
    """Contiguous buckets from ``since`` (aligned down to a multiple of ``bucket_s``) to ``until``."""

    since: datetime
    until: datetime
    bucket_s: int
    buckets: tuple[TrafficBucket, ...]

    def totals(self, last_s: float | None = None) -> TrafficBucket:
        """Every bucket (or those of the last ``last_s`` seconds) merged into one."""
        chosen = self.buckets
        if last_s is not None:
            cutoff = self.until - timedelta(seconds=last_s)
            chosen = tuple(b for b in self.buckets if b.start + timedelta(seconds=self.bucket_s) > cutoff)
        counts = [0] * (len(LATENCY_BOUNDS_MS) + 1)
        for bucket in chosen:
            for index, count in enumerate(bucket.latency_counts):
                counts[index] += count
        return TrafficBucket(
            start=chosen[0].start if chosen else self.until,
            requests=sum(b.requests for b in chosen),
            errors=sum(b.errors for b in chosen),
            cost=sum(b.cost for b in chosen),
            tokens=sum(b.tokens for b in chosen),
            latency_counts=tuple(counts) if any(counts) else (),
            **{name: sum(getattr(b, name) for b in chosen) for name in _CLASS_FIELDS.values()},
        )


@dataclass(frozen=True, slots=True)
class TrafficBreakdown:
    """Requests per bucket for each value of one column (``None`` values are left out)."""

    since: datetime
    until: datetime
    bucket_s: int
    starts: tuple[datetime, ...]
    counts: dict[str, tuple[int, ...]]


class TrafficRepository:
    """Read-only time series over the ``request_log`` table."""

    __slots__ = ("_db",)

    def __init__(self, db: Database) -> None:
        self._db = db

    async def series(
        self,
        since: datetime,
        bucket_s: int,
        *,
        until: datetime | None = None,
        key_id: str | None = None,
        model: str | None = None,
    ) -> TrafficSeries:
        """Buckets of ``bucket_s`` seconds from ``since`` to ``until`` (default: now)."""
        end = until or datetime.now(UTC)
        start, origin, count = _range(since, end, bucket_s)
        rows = await self._grouped(start, end, origin, bucket_s, key_id, model)
        buckets = _assemble(rows, start, bucket_s, count)
        return TrafficSeries(since=start, until=end, bucket_s=bucket_s, buckets=buckets)

    async def earliest(self, since: datetime, *, key_id: str | None = None) -> datetime | None:
        """When the first request at or after ``since`` arrived (``None``: none has)."""
        if since.tzinfo is None:
            raise ValueError("since must be timezone-aware (UTC), got a naive datetime")
        c = request_log.c
        query = select(func.min(c.created_at)).where(c.created_at >= since)
        if key_id is not None:
            query = query.where(c.key_id == key_id)
        async with self._db.read() as conn:
            first: datetime | None = (await conn.execute(query)).scalar_one()
        return first

    async def breakdown(
        self,
        since: datetime,
        bucket_s: int,
        *,
        by: BreakdownColumn,
        until: datetime | None = None,
        key_id: str | None = None,
    ) -> TrafficBreakdown:
        """Requests per bucket of ``bucket_s`` seconds for each deployment, model or key."""
        end = until or datetime.now(UTC)
        start, origin, count = _range(since, end, bucket_s)
        c = request_log.c
        column = {"deployment": c.deployment, "model": c.model, "key_id": c.key_id}[by]
        time_bucket = self._time_bucket(origin, bucket_s).label("t")
        query = (
            select(column, time_bucket, func.count())
            .where(c.created_at >= start, c.created_at < end, column.is_not(None))
            .group_by(column, time_bucket)
        )
        if key_id is not None:
            query = query.where(c.key_id == key_id)
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        counts: dict[str, list[int]] = {}
        for name, t, n in rows:
            if 0 <= int(t) < count:
                counts.setdefault(str(name), [0] * count)[int(t)] += int(n)
        starts = tuple(start + timedelta(seconds=i * bucket_s) for i in range(count))
        return TrafficBreakdown(
            since=start,
            until=end,
            bucket_s=bucket_s,
            starts=starts,
            counts={name: tuple(values) for name, values in sorted(counts.items())},
        )

    async def outcomes(
        self, since: datetime, *, until: datetime | None = None, key_id: str | None = None
    ) -> dict[str, dict[str, int]]:
        """Requests per model and outcome class in ``[since, until)``: ``{model: {class: count}}``."""
        end = until or datetime.now(UTC)
        _check_aware(since, end)
        c = request_log.c
        outcome = outcome_expression().label("outcome")
        query = (
            select(c.model, outcome, func.count())
            .where(c.created_at >= since, c.created_at < end)
            .group_by(c.model, outcome)
        )
        if key_id is not None:
            query = query.where(c.key_id == key_id)
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        found: dict[str, dict[str, int]] = {}
        for model, kind, count in rows:
            found.setdefault(str(model), {})[str(kind)] = int(count)
        return found

    async def _grouped(
        self,
        start: datetime,
        end: datetime,
        origin: int,
        bucket_s: int,
        key_id: str | None,
        model: str | None,
    ) -> list[tuple[int, int, str, int, float, int]]:
        c = request_log.c
        time_bucket = self._time_bucket(origin, bucket_s).label("t")
        outcome = outcome_expression().label("outcome")
        latency = func.coalesce(c.ttft_ms, c.latency_ms)
        whens = [(latency < bound, index) for index, bound in enumerate(LATENCY_BOUNDS_MS)]
        latency_bucket = case((c.status >= 400, -1), *whens, else_=len(LATENCY_BOUNDS_MS)).label("lat")
        query = (
            select(
                time_bucket,
                latency_bucket,
                outcome,
                func.count(),
                func.coalesce(func.sum(c.cost), 0.0),
                func.coalesce(func.sum(c.prompt_tokens + c.completion_tokens), 0),
            )
            .where(c.created_at >= start, c.created_at < end)
            .group_by(time_bucket, latency_bucket, outcome)
        )
        if key_id is not None:
            query = query.where(c.key_id == key_id)
        if model is not None:
            query = query.where(c.model == model)
        async with self._db.read() as conn:
            result = (await conn.execute(query)).all()
        return [
            (int(t), int(lat), str(kind), int(n), float(cost), int(tok))
            for t, lat, kind, n, cost, tok in result
        ]

    def _time_bucket(self, origin: int, bucket_s: int) -> ColumnElement[Any]:
        created = request_log.c.created_at
        if self._db.backend == "postgresql":
            seconds: ColumnElement[Any] = func.extract("epoch", created)
            return cast(func.floor((seconds - literal(origin)) / literal(bucket_s)), Integer)
        # SQLite keeps naive UTC text; strftime('%s') reads it as UTC seconds since the epoch.
        seconds = cast(func.strftime("%s", created), Integer)
        return cast((seconds - literal(origin)) / literal(bucket_s), Integer)


def _check_aware(since: datetime, until: datetime) -> None:
    for name, value in (("since", since), ("until", until)):
        if value.tzinfo is None:
            raise ValueError(f"{name} must be timezone-aware (UTC), got a naive datetime")


def _range(since: datetime, end: datetime, bucket_s: int) -> tuple[datetime, int, int]:
    """The aligned start, its epoch seconds and the number of buckets up to ``end``."""
    _check_aware(since, end)
    if bucket_s < 1:
        raise ValueError(f"bucket_s must be at least 1, got {bucket_s}")
    origin = math.floor(since.timestamp() / bucket_s) * bucket_s
    count = max(1, math.ceil((end.timestamp() - origin) / bucket_s))
    if count > _MAX_BUCKETS:
        raise ValueError(f"{count} buckets asked for; at most {_MAX_BUCKETS}: use wider buckets")
    return datetime.fromtimestamp(origin, UTC), origin, count


def outcome_expression() -> ColumnElement[Any]:
    """``request_log.outcome``, or for a row written without one, the class its status and error
    kind suggest (the rule of :func:`interlock.telemetry.outcome.classify_status`)."""
    c = request_log.c
    upstream = and_(func.substr(c.error_kind, 1, 9) == "upstream_", c.error_kind != "upstream_rejected")
    guess = case(
        (c.status < 400, "ok"),
        (c.status == CLIENT_CLOSED, "cancelled"),
        (upstream, "upstream_error"),
        (c.status == 429, "refused"),
        (c.status >= 500, "gateway_error"),
        else_="client_error",
    )
    return func.coalesce(c.outcome, guess)


def _assemble(
    rows: list[tuple[int, int, str, int, float, int]], start: datetime, bucket_s: int, count: int
) -> tuple[TrafficBucket, ...]:
    size = len(LATENCY_BOUNDS_MS) + 1
    requests, tokens = [0] * count, [0] * count
    cost = [0.0] * count
    classes: list[dict[str, int]] = [{} for _ in range(count)]
    latency: list[list[int] | None] = [None] * count
    for t, lat, kind, n, spent, tok in rows:
        if not 0 <= t < count:
            continue  # a clock step between the query's bounds and its buckets
        requests[t] += n
        cost[t] += spent
        tokens[t] += tok
        name = _CLASS_FIELDS.get(kind)
        if name is not None:
            classes[t][name] = classes[t].get(name, 0) + n
        if lat >= 0:
            counts = latency[t]
            if counts is None:
                counts = latency[t] = [0] * size
            counts[lat] += n
    return tuple(
        TrafficBucket(
            start=start + timedelta(seconds=i * bucket_s),
            requests=requests[i],
            errors=classes[i].get("upstream_errors", 0) + classes[i].get("gateway_errors", 0),
            cost=round(cost[i], 10),
            tokens=tokens[i],
            latency_counts=tuple(latency[i] or ()),
            **classes[i],
        )
        for i in range(count)
    )
