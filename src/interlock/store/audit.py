"""The audit log: one hash-chained row per change someone made through the gateway's control surfaces.

Keys, orgs, teams, users, memberships and deployment actions are audited; anything else (budgets,
limits, rollouts) joins by calling :meth:`AuditRepository.record`, or :func:`append_entry` inside
its own write transaction so that the change and its entry commit together. Each entry names the
actor (key id and name), the action, the target, and the target's state ``before`` and ``after``
(``None`` for a creation or a deletion). Entries are written before the caller answers, so an
action the caller saw succeed is on record.

Appends are serialised on the chain head row: ``SELECT … FOR UPDATE`` on PostgreSQL, ``BEGIN
IMMEDIATE`` on SQLite, so entries written by many processes at once still form one chain.
:mod:`interlock.store.audit_chain` says how hashes are made and checked.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from interlock.store.audit_chain import GENESIS_HASH, ChainReport, ChainWalker, entry_hash, plain_json
from interlock.store.engine import Database
from interlock.store.schema import audit_chain_head, audit_log

__all__ = ["AuditActor", "AuditEntry", "AuditRepository", "append_entry"]

_MAX_LIMIT = 10_000
_VERIFY_BATCH = 1_000
_HEAD_ID = 1


@dataclass(frozen=True, slots=True)
class AuditActor:
    """Who made a change: the acting key's id (``master`` for the master key) and its name."""

    key_id: str
    name: str


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audited change. ``at`` is timezone-aware UTC; ``detail``, ``before`` and ``after`` are
    read-only JSON. ``seq`` is the entry's position in the chain."""

    id: int
    at: datetime
    actor_key_id: str | None
    action: str
    target: str
    detail: Mapping[str, Any] = field(default_factory=dict)
    seq: int = 0
    actor: str | None = None
    before: Any = None
    after: Any = None
    prev_hash: str = GENESIS_HASH
    hash: str = ""


async def append_entry(
    conn: AsyncConnection,
    action: str,
    target: str,
    *,
    actor: AuditActor | None,
    before: Any = None,
    after: Any = None,
    detail: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """Append one entry to the chain inside the caller's write transaction (``Database.write``)."""
    if not action or not target:
        raise ValueError("an audit entry needs an action and a target")
    when = at or datetime.now(UTC)
    if when.tzinfo is None:
        raise ValueError("at must be timezone-aware (UTC), got a naive datetime")
    head_query = select(audit_chain_head.c.seq, audit_chain_head.c.hash).where(
        audit_chain_head.c.id == _HEAD_ID
    )
    head = (await conn.execute(head_query.with_for_update())).first()
    if head is None:  # a database migrated without its head row; make it (once)
        await conn.execute(insert(audit_chain_head).values(id=_HEAD_ID, seq=0, hash=GENESIS_HASH))
        head_seq, prev_hash = 0, GENESIS_HASH
    else:
        head_seq, prev_hash = int(head.seq), str(head.hash)
    fields: dict[str, Any] = {
        "seq": head_seq + 1,
        "at": when.astimezone(UTC),
        "actor_key_id": actor.key_id if actor else None,
        "actor": actor.name if actor else None,
        "action": action,
        "target": target,
        "detail": plain_json(dict(detail or {})),
        "before": plain_json(before),
        "after": plain_json(after),
        "prev_hash": prev_hash,
    }
    fields["hash"] = entry_hash(fields)
    statement = insert(audit_log).values(**fields).returning(audit_log.c.id)
    entry_id = int((await conn.execute(statement)).scalar_one())
    await conn.execute(
        update(audit_chain_head)
        .where(audit_chain_head.c.id == _HEAD_ID)
        .values(seq=fields["seq"], hash=fields["hash"])
    )
    return AuditEntry(id=entry_id, **fields)


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
        actor_key_id: str | None = None,
        actor: AuditActor | None = None,
        detail: Mapping[str, Any] | None = None,
        before: Any = None,
        after: Any = None,
        at: datetime | None = None,
    ) -> AuditEntry:
        """Write one entry in a transaction of its own and return it as stored.

        ``actor`` names who acted; ``actor_key_id`` alone is accepted too (the name is then empty).
        """
        if actor is None and actor_key_id is not None:
            actor = AuditActor(actor_key_id, "")
        async with self._db.write() as conn:
            return await append_entry(
                conn, action, target, actor=actor, before=before, after=after, detail=detail, at=at
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
        query = select(audit_log).order_by(c.at.desc(), c.seq.desc()).limit(limit)
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

    async def verify(self) -> ChainReport:
        """Walk the whole chain in order; report the first edited, deleted or reordered entry."""
        walker = ChainWalker()
        last_seq = 0
        c = audit_log.c
        async with self._db.read() as conn:
            head = (
                await conn.execute(
                    select(audit_chain_head.c.seq, audit_chain_head.c.hash).where(
                        audit_chain_head.c.id == _HEAD_ID
                    )
                )
            ).first()
            while True:
                query = select(audit_log).where(c.seq > last_seq).order_by(c.seq).limit(_VERIFY_BATCH)
                rows = [dict(row._mapping) for row in (await conn.execute(query)).all()]
                if not rows or not walker.feed(rows):
                    break
                last_seq = int(rows[-1]["seq"])
        head_seq, head_hash = (int(head.seq), str(head.hash)) if head else (0, GENESIS_HASH)
        return walker.finish(head_seq, head_hash)


def _to_entry(row: Row[Any]) -> AuditEntry:
    m = row._mapping
    return AuditEntry(
        id=int(m["id"]),
        at=m["at"],
        actor_key_id=m["actor_key_id"],
        action=m["action"],
        target=m["target"],
        detail=dict(m["detail"] or {}),
        seq=int(m["seq"]),
        actor=m["actor"],
        before=m["before"],
        after=m["after"],
        prev_hash=m["prev_hash"],
        hash=m["hash"],
    )
