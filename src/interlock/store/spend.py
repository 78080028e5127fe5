"""Spend from the request log: cost, tokens and requests over a time range, by key, model and team.

Sums are computed by the database (one grouped query per breakdown), so a summary costs a range scan
of the ``created_at`` index, not a transfer of the rows. ``key_id``, ``user_id`` and ``team_id``
narrow everything to one key's, user's or team's requests: that is how a caller sees its own spend
and nobody else's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, ColumnElement, Select, case, func, select

from interlock.store.engine import Database
from interlock.store.schema import request_log

__all__ = ["GROUPINGS", "SpendLine", "SpendRepository", "SpendSummary"]

_ERROR_STATUS = 400
_MAX_GROUPS = 1_000
GROUPINGS = ("key", "user", "team", "model", "deployment")
"""What :meth:`SpendRepository.grouped` can group by (pools are grouped from deployments)."""


@dataclass(frozen=True, slots=True)
class SpendLine:
    """Totals for one group (``name`` is the key id, model or team id; ``None`` for the grand total
    and for requests that had no key or team)."""

    name: str | None
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost: float = 0.0

    @property
    def tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class SpendSummary:
    """Spend between ``since`` (inclusive) and ``until`` (exclusive; ``None``: up to now).

    Each breakdown is ordered by cost, highest first, and holds at most ``limit`` groups; ``total``
    always covers every request in the range.
    """

    since: datetime
    until: datetime | None
    total: SpendLine
    by_key: tuple[SpendLine, ...]
    by_model: tuple[SpendLine, ...]
    by_team: tuple[SpendLine, ...]


class SpendRepository:
    """Read-only sums over the ``request_log`` table."""

    __slots__ = ("_db",)

    def __init__(self, db: Database) -> None:
        self._db = db

    async def total(
        self,
        since: datetime,
        until: datetime | None = None,
        *,
        key_id: str | None = None,
        user_id: str | None = None,
        team_id: str | None = None,
    ) -> SpendLine:
        """Totals only (one query): what a headline number needs."""
        conditions = _conditions(since, until, key_id, user_id, team_id)
        async with self._db.read() as conn:
            row = (await conn.execute(_sums().where(*conditions))).one()
        return _line(None, tuple(row))

    async def summary(
        self,
        since: datetime,
        until: datetime | None = None,
        *,
        key_id: str | None = None,
        user_id: str | None = None,
        team_id: str | None = None,
        limit: int = 100,
    ) -> SpendSummary:
        """Totals and the by-key, by-model and by-team breakdowns for the range."""
        if not 1 <= limit <= _MAX_GROUPS:
            raise ValueError(f"limit must be between 1 and {_MAX_GROUPS}, got {limit}")
        conditions = _conditions(since, until, key_id, user_id, team_id)
        c = request_log.c
        async with self._db.read() as conn:
            total_row = (await conn.execute(_sums().where(*conditions))).one()
            groups: dict[str, tuple[SpendLine, ...]] = {}
            for name, column in (("key", c.key_id), ("model", c.model), ("team", c.team_id)):
                query = _grouped(column, limit).where(*conditions)
                if name == "team":
                    query = query.where(c.team_id.is_not(None))
                groups[name] = tuple(_line(row[0], row[1:]) for row in (await conn.execute(query)).all())
        return SpendSummary(
            since=since,
            until=until,
            total=_line(None, tuple(total_row)),
            by_key=groups["key"],
            by_model=groups["model"],
            by_team=groups["team"],
        )

    async def grouped(
        self, by: str, since: datetime, until: datetime | None = None, *, limit: int = _MAX_GROUPS
    ) -> tuple[SpendLine, ...]:
        """Spend per ``by`` (one of :data:`GROUPINGS`) over the range, highest cost first."""
        if by not in GROUPINGS:
            raise ValueError(f"by must be one of {', '.join(GROUPINGS)}, got {by!r}")
        if not 1 <= limit <= _MAX_GROUPS:
            raise ValueError(f"limit must be between 1 and {_MAX_GROUPS}, got {limit}")
        c = request_log.c
        column = {"key": c.key_id, "user": c.user_id, "team": c.team_id, "model": c.model}.get(
            by, c.deployment
        )
        query = _grouped(column, limit).where(*_conditions(since, until, None))
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        return tuple(_line(row[0], row[1:]) for row in rows)


def _conditions(
    since: datetime,
    until: datetime | None,
    key_id: str | None,
    user_id: str | None = None,
    team_id: str | None = None,
) -> list[ColumnElement[bool]]:
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise ValueError(f"{name} must be timezone-aware (UTC), got a naive datetime")
    c = request_log.c
    conditions: list[ColumnElement[bool]] = [c.created_at >= since]
    if until is not None:
        conditions.append(c.created_at < until)
    for column, wanted in ((c.key_id, key_id), (c.user_id, user_id), (c.team_id, team_id)):
        if wanted is not None:
            conditions.append(column == wanted)
    return conditions


def _aggregates() -> list[ColumnElement[Any]]:
    c = request_log.c
    return [
        func.count(),
        func.coalesce(func.sum(case((c.status >= _ERROR_STATUS, 1), else_=0)), 0),
        func.coalesce(func.sum(c.prompt_tokens), 0),
        func.coalesce(func.sum(c.completion_tokens), 0),
        func.coalesce(func.sum(c.cached_tokens), 0),
        func.coalesce(func.sum(c.cost), 0.0),
    ]


def _sums() -> Select[Any]:
    return select(*_aggregates())


def _grouped(column: Column[Any], limit: int) -> Select[Any]:
    aggregates = _aggregates()
    cost = aggregates[-1]
    return (
        select(column, *aggregates)
        .group_by(column)
        .order_by(cost.desc(), func.count().desc(), column)
        .limit(limit)
    )


def _line(name: Any, values: tuple[Any, ...]) -> SpendLine:
    requests, errors, prompt, completion, cached, cost = values
    return SpendLine(
        name=None if name is None else str(name),
        requests=int(requests),
        errors=int(errors),
        prompt_tokens=int(prompt),
        completion_tokens=int(completion),
        cached_tokens=int(cached),
        cost=float(cost),
    )
