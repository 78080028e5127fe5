"""The audit log: one row per change someone made through the gateway's control surfaces.

Operator actions (drain, disable, enable a deployment) are the first entries; key, budget and
rollout changes join as they land. Entries are written synchronously, before the caller answers, so
an action the caller saw succeed is on record. ``actor_key_id`` is the acting key's id (``master``
for the master key); ``detail`` is a small JSON object (where the action came from, the key's name,
anything the action wants to remember).
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, insert, select

from interlock.store.engine import Database
from interlock.store.schema import audit_log

__all__ = ["AuditEntry", "AuditRepository"]

_MAX_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audited action. ``at`` is timezone-aware UTC; ``detail`` is read-only JSON."""

    id: int
    at: datetime
    actor_key_id: str | None
    action: str
    target: str
    detail: Mapping[str, Any] = field(default_factory=dict)


class AuditRepository:
    """Rows of the ``audit_log`` table, newest first when listed."""

    __slots__ = ("_db",)

    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(
        self,
        action: str,
        target: str,
        *,
        actor_key_id: str | None,
        detail: Mapping[str, Any] | None = None,
        at: datetime | None = None,
    ) -> AuditEntry:
        """Write one entry and return it as stored (with its id)."""
        if not action or not target:
            raise ValueError("an audit entry needs an action and a target")
        when = at or datetime.now(UTC)
        if when.tzinfo is None:
            raise ValueError("at must be timezone-aware (UTC), got a naive datetime")
        details = dict(detail or {})
        statement = (
            insert(audit_log)
            .values(at=when, actor_key_id=actor_key_id, action=action, target=target, detail=details)
            .returning(audit_log.c.id)
        )
        async with self._db.write() as conn:
            entry_id = int((await conn.execute(statement)).scalar_one())
        return AuditEntry(
            id=entry_id, at=when, actor_key_id=actor_key_id, action=action, target=target, detail=details
        )

    async def list(
        self,
        *,
        target: str | None = None,
        action: str | None = None,
        actor_key_id: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> builtins.list[AuditEntry]:
        """Matching entries, newest first."""
        if not 1 <= limit <= _MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {_MAX_LIMIT}, got {limit}")
        if since is not None and since.tzinfo is None:
            raise ValueError("since must be timezone-aware (UTC), got a naive datetime")
        c = audit_log.c
        query = select(audit_log).order_by(c.at.desc(), c.id.desc()).limit(limit)
        if target is not None:
            query = query.where(c.target == target)
        if action is not None:
            query = query.where(c.action == action)
        if actor_key_id is not None:
            query = query.where(c.actor_key_id == actor_key_id)
        if since is not None:
            query = query.where(c.at >= since)
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [_to_entry(row) for row in rows]


def _to_entry(row: Row[Any]) -> AuditEntry:
    m = row._mapping
    return AuditEntry(
        id=int(m["id"]),
        at=m["at"],
        actor_key_id=m["actor_key_id"],
        action=m["action"],
        target=m["target"],
        detail=dict(m["detail"] or {}),
    )
