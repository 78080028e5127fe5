"""The request log: one row per request the gateway answered, written in batches, queried by the
admin API and dashboards, and trimmed by retention.

``created_at`` is a timezone-aware UTC ``datetime`` (naive values are rejected when a record is
built, so one bad record cannot poison a batch later). Durations are float milliseconds; ``cost``
is USD.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from sqlalchemy import Row, delete, select

from interlock.store.engine import Database
from interlock.store.schema import request_log

__all__ = ["RequestLogRepository", "RequestRecord", "StatusClass"]

StatusClass = Literal["ok", "error"]

_ERROR_STATUS = 400  # status >= this is an error; below is ok
_MAX_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as logged.

    ``request_id`` is the gateway's own id, unique across processes; ``client_request_id`` is the
    caller's ``x-request-id`` (short printable ASCII), kept only to correlate with the caller's logs
    and never trusted as a key. ``attempts`` holds one JSON object per upstream attempt (deployment,
    status, error, latency …); ``extra`` holds fields added later (version, variant, tier, cache,
    budget) until they earn a column of their own. Both are plain JSON values; treat them as
    read-only.
    """

    request_id: str
    created_at: datetime
    model: str
    operation: str  # "chat", "embeddings" or "messages"
    status: int
    stream: bool = False
    key_id: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    deployment: str | None = None
    provider: str | None = None
    upstream_model: str | None = None
    error_kind: str | None = None
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    overhead_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost: float = 0.0
    attempts: tuple[Mapping[str, Any], ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)
    client_request_id: str | None = None
    outcome: str | None = None
    """Whose fault the result was: ``ok``, ``client_error``, ``refused``, ``upstream_error``,
    ``gateway_error`` or ``cancelled`` (see :mod:`interlock.telemetry.outcome`)."""
    decisions: tuple[Mapping[str, Any], ...] = ()
    """The routing decisions, one JSON object per pick (see :mod:`interlock.routing.decision`)."""

    def __post_init__(self) -> None:
        if self.created_at.tzinfo is None:
            raise ValueError("RequestRecord.created_at must be timezone-aware (UTC)")


class RequestLogRepository:
    """Rows of the ``request_log`` table."""

    __slots__ = ("_db",)

    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert_many(self, records: Sequence[RequestRecord]) -> None:
        """Insert ``records`` with one executemany in one transaction.

        A ``request_id`` that is already stored is skipped, so retrying a batch whose commit
        succeeded but whose acknowledgement was lost writes nothing twice. That is safe only because
        the gateway assigns every ``request_id`` itself; what a caller sends is ``client_request_id``.
        """
        if not records:
            return
        if self._db.backend == "sqlite":
            # The writer calls this from the event loop: SQLAlchemy's per-row bind processing costs
            # ~50 µs a row there, plain tuples through the driver a few. Same text as UTCDateTime.
            params = [_to_sqlite_params(record) for record in records]
            async with self._db.write() as conn:
                await conn.exec_driver_sql(_SQLITE_INSERT, params)
            return
        rows = [_to_row(record) for record in records]
        async with self._db.write() as conn:
            await conn.execute(self._db.insert_ignoring_duplicates(request_log), rows)

    async def query(
        self,
        *,
        model: str | None = None,
        status: int | None = None,
        status_class: StatusClass | None = None,
        key_id: str | None = None,
        user_id: str | None = None,
        team_id: str | None = None,
        client_request_id: str | None = None,
        outcomes: Sequence[str] | None = None,
        since: datetime | None = None,
        before: datetime | None = None,
        limit: int = 100,
    ) -> list[RequestRecord]:
        """Matching records, newest first. ``status_class`` is ``"ok"`` (< 400) or ``"error"``;
        ``outcomes`` keeps the records of those outcome classes; ``key_id``, ``user_id`` and
        ``team_id`` keep one key's, user's or team's requests.

        ``since`` is inclusive and ``before`` exclusive; pass the oldest ``created_at`` of one page
        as ``before`` to fetch the next.
        """
        if not 1 <= limit <= _MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {_MAX_LIMIT}, got {limit}")
        if status_class not in (None, "ok", "error"):
            raise ValueError(f"status_class must be 'ok' or 'error', got {status_class!r}")
        for name, value in (("since", since), ("before", before)):
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} must be timezone-aware (UTC), got a naive datetime")
        c = request_log.c
        query = select(request_log).order_by(c.created_at.desc(), c.request_id.desc()).limit(limit)
        if model is not None:
            query = query.where(c.model == model)
        if status is not None:
            query = query.where(c.status == status)
        if status_class == "error":
            query = query.where(c.status >= _ERROR_STATUS)
        elif status_class == "ok":
            query = query.where(c.status < _ERROR_STATUS)
        if key_id is not None:
            query = query.where(c.key_id == key_id)
        if user_id is not None:
            query = query.where(c.user_id == user_id)
        if team_id is not None:
            query = query.where(c.team_id == team_id)
        if client_request_id is not None:
            query = query.where(c.client_request_id == client_request_id)
        if outcomes is not None:
            query = query.where(c.outcome.in_(list(outcomes)))
        if since is not None:
            query = query.where(c.created_at >= since)
        if before is not None:
            query = query.where(c.created_at < before)
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [_to_record(row) for row in rows]

    async def get(self, request_id: str) -> RequestRecord | None:
        """The record with this id, or ``None``."""
        query = select(request_log).where(request_log.c.request_id == request_id)
        async with self._db.read() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _to_record(row)

    async def delete_older_than(self, cutoff: datetime) -> int:
        """Delete records created before ``cutoff``; return how many went."""
        if cutoff.tzinfo is None:
            raise ValueError("cutoff must be timezone-aware (UTC), got a naive datetime")
        statement = delete(request_log).where(request_log.c.created_at < cutoff)
        async with self._db.write() as conn:
            result = await conn.execute(statement)
        return max(result.rowcount, 0)


_COLUMNS = (
    "request_id", "created_at", "key_id", "user_id", "team_id", "model", "deployment", "provider",
    "upstream_model", "operation", "stream", "status", "error_kind", "latency_ms", "ttft_ms",
    "overhead_ms", "prompt_tokens", "completion_tokens", "cached_tokens", "cost", "attempts", "extra",
    "client_request_id", "outcome", "decisions",
)  # fmt: skip
_SQLITE_INSERT = (
    f"INSERT INTO request_log ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))}) "
    "ON CONFLICT DO NOTHING"
)


def _to_sqlite_params(record: RequestRecord) -> tuple[Any, ...]:
    row = _to_row(record)
    row["created_at"] = record.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    row["stream"] = int(record.stream)
    row["attempts"] = orjson.dumps(list(record.attempts), default=_json_default).decode()
    row["extra"] = orjson.dumps(dict(record.extra), default=_json_default).decode()
    row["decisions"] = orjson.dumps(list(record.decisions), default=_json_default).decode()
    return tuple(row[column] for column in _COLUMNS)


def _json_default(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    return str(value)


def _to_row(record: RequestRecord) -> dict[str, Any]:
    return {
        "request_id": record.request_id,
        "created_at": record.created_at,
        "key_id": record.key_id,
        "user_id": record.user_id,
        "team_id": record.team_id,
        "model": record.model,
        "deployment": record.deployment,
        "provider": record.provider,
        "upstream_model": record.upstream_model,
        "operation": record.operation,
        "stream": record.stream,
        "status": record.status,
        "error_kind": record.error_kind,
        "latency_ms": record.latency_ms,
        "ttft_ms": record.ttft_ms,
        "overhead_ms": record.overhead_ms,
        "prompt_tokens": record.prompt_tokens,
        "completion_tokens": record.completion_tokens,
        "cached_tokens": record.cached_tokens,
        "cost": record.cost,
        # The engine's JSON encoder turns mappings and tuples into objects and arrays.
        "attempts": record.attempts,
        "extra": record.extra,
        "client_request_id": record.client_request_id,
        "outcome": record.outcome,
        "decisions": record.decisions,
    }


def _to_record(row: Row[Any]) -> RequestRecord:
    m = row._mapping
    return RequestRecord(
        request_id=m["request_id"],
        created_at=m["created_at"],
        model=m["model"],
        operation=m["operation"],
        status=m["status"],
        stream=bool(m["stream"]),
        key_id=m["key_id"],
        user_id=m["user_id"],
        team_id=m["team_id"],
        deployment=m["deployment"],
        provider=m["provider"],
        upstream_model=m["upstream_model"],
        error_kind=m["error_kind"],
        latency_ms=m["latency_ms"],
        ttft_ms=m["ttft_ms"],
        overhead_ms=m["overhead_ms"],
        prompt_tokens=m["prompt_tokens"],
        completion_tokens=m["completion_tokens"],
        cached_tokens=m["cached_tokens"],
        cost=m["cost"],
        attempts=tuple(m["attempts"] or ()),
        extra=dict(m["extra"] or {}),
        client_request_id=m["client_request_id"],
        outcome=m["outcome"],
        decisions=tuple(m["decisions"] or ()),
    )
