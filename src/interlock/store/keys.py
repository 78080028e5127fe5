"""API keys: creation, update, lookup by plaintext, revocation, and the revision counter gateways poll.

Only the SHA-256 of a key is stored. The plaintext is returned once, by :meth:`KeyRepository.create`,
and cannot be recovered afterwards. Keys carry 240 random bits, so a fast unsalted hash is enough:
there is nothing to brute-force, and lookups by hash stay one indexed equality query.
"""

from __future__ import annotations

import builtins
import hashlib
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, or_, select, update

from interlock.store.audit import AuditActor, append_entry
from interlock.store.engine import Database
from interlock.store.revision import bump_keys_revision, read_keys_revision
from interlock.store.schema import api_keys

__all__ = ["KEY_PREFIX", "KeyRecord", "KeyRepository", "hash_key", "key_view"]

KEY_PREFIX = "sk-il-"
"""Every Interlock key starts with this, so leaked keys are easy to recognise and scan for."""

_RANDOM_BYTES = 30  # 40 url-safe characters
_DISPLAY_CHARS = 12  # "sk-il-" plus 6 random characters: enough to tell keys apart in a list
_MAX_KEY_CHARS = 256  # longer input cannot be a key; don't hash or query for it
_TOUCH_CHUNK = 500  # ids per UPDATE … IN (…), well under every backend's parameter limit

_RECORD_COLUMNS = [c for c in api_keys.c if c.name != "key_hash"]


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One API key as stored, without its hash. All timestamps are timezone-aware UTC.

    ``metadata`` is a plain dict (so records pickle and serialise as-is); treat it as read-only.
    """

    id: str
    name: str
    key_prefix: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    user_id: str | None = None
    team_id: str | None = None
    org_id: str | None = None
    roles: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    models: tuple[str, ...] = ()
    """Model names or globs this key may use; empty: any model."""
    pools: tuple[str, ...] = ()
    """Pools this key may be routed to; empty: any pool."""

    def usable(self, now: datetime | None = None) -> bool:
        """Whether the key authenticates at ``now``: not revoked and not expired."""
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > (now or _utcnow())


def hash_key(plaintext: str) -> str:
    """The SHA-256 hex digest under which a key is stored and looked up."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


_CHANGEABLE = frozenset({"name", "roles", "expires_at", "models", "pools", "metadata"})


def key_view(record: KeyRecord) -> dict[str, Any]:
    """The key as a JSON-ready dict, never with its hash (the admin API and the audit log use it)."""
    return {
        "id": record.id,
        "name": record.name,
        "key_prefix": record.key_prefix,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "revoked_at": record.revoked_at,
        "last_used_at": record.last_used_at,
        "role": record.roles[0] if record.roles else None,
        "roles": list(record.roles),
        "user_id": record.user_id,
        "team_id": record.team_id,
        "org_id": record.org_id,
        "models": list(record.models),
        "pools": list(record.pools),
        "metadata": dict(record.metadata),
    }


class KeyRepository:
    """API keys in the ``api_keys`` table. Every create, update and revoke bumps ``keys_revision``;
    with an ``actor`` it is audited in the same transaction."""

    __slots__ = ("_db",)

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        name: str,
        *,
        roles: Iterable[str] = (),
        metadata: Mapping[str, Any] | None = None,
        expires_at: datetime | None = None,
        user_id: str | None = None,
        team_id: str | None = None,
        org_id: str | None = None,
        models: Iterable[str] = (),
        pools: Iterable[str] = (),
        actor: AuditActor | None = None,
    ) -> tuple[KeyRecord, str]:
        """Create a key; return its record and its plaintext, which is never available again."""
        if not name.strip():
            raise ValueError("a key needs a non-empty name")
        for label, values in (("roles", roles), ("models", models), ("pools", pools)):
            if isinstance(values, str):
                raise TypeError(f"{label} must be a collection of names, not one string")
        _require_aware(expires_at, "expires_at")
        plaintext = KEY_PREFIX + secrets.token_urlsafe(_RANDOM_BYTES)
        record = KeyRecord(
            id="key_" + secrets.token_hex(8),
            name=name.strip(),
            key_prefix=plaintext[:_DISPLAY_CHARS],
            created_at=_utcnow(),
            expires_at=expires_at.astimezone(UTC) if expires_at else None,
            user_id=user_id,
            team_id=team_id,
            org_id=org_id,
            roles=tuple(roles),
            metadata=dict(metadata or {}),
            models=tuple(models),
            pools=tuple(pools),
        )
        row = _to_row(record)
        async with self._db.write() as conn:
            await conn.execute(api_keys.insert().values(key_hash=hash_key(plaintext), **row))
            await bump_keys_revision(conn)
            if actor is not None:
                await append_entry(conn, "key.create", record.id, actor=actor, after=key_view(record))
        return record, plaintext

    async def update(
        self, key_id: str, changes: Mapping[str, Any], *, actor: AuditActor | None = None
    ) -> KeyRecord | None:
        """Change a key's ``name``, ``roles``, ``expires_at``, ``models``, ``pools`` or ``metadata``;
        ``None`` when no unrevoked key has this id. Its owner never changes."""
        unknown = set(changes) - _CHANGEABLE
        if unknown:
            raise ValueError(f"cannot change {', '.join(sorted(unknown))} of a key")
        values = dict(changes)
        if "name" in values and not str(values["name"]).strip():
            raise ValueError("a key needs a non-empty name")
        _require_aware(values.get("expires_at"), "expires_at")
        for listed in ("roles", "models", "pools"):
            if listed in values:
                values[listed] = list(values[listed])
        live = (api_keys.c.id == key_id) & api_keys.c.revoked_at.is_(None)
        query = select(*_RECORD_COLUMNS).where(live)
        async with self._db.write() as conn:
            row = (await conn.execute(query.with_for_update())).first()
            if row is None:
                return None
            before = _to_record(row)
            if values:
                await conn.execute(update(api_keys).where(live).values(**values))
            after = _to_record((await conn.execute(query)).one())
            await bump_keys_revision(conn)
            if actor is not None:
                await append_entry(
                    conn, "key.update", key_id, actor=actor, before=key_view(before), after=key_view(after)
                )
        return after

    async def list(
        self,
        include_revoked: bool = False,
        *,
        team_id: str | None = None,
        user_id: str | None = None,
        key_ids: Sequence[str] | None = None,
    ) -> builtins.list[KeyRecord]:
        """Keys, oldest first; revoked ones only when asked. Expired keys are included.

        ``team_id``, ``user_id`` and ``key_ids`` narrow the list; given together, a key matching
        any one of them is listed (what a team admin or a developer may see)."""
        query = select(*_RECORD_COLUMNS).order_by(api_keys.c.created_at, api_keys.c.id)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        scopes: builtins.list[ColumnElement[bool]] = []
        if team_id is not None:
            scopes.append(api_keys.c.team_id == team_id)
        if user_id is not None:
            scopes.append(api_keys.c.user_id == user_id)
        if key_ids is not None:
            scopes.append(api_keys.c.id.in_(builtins.list(key_ids)))
        if scopes:
            query = query.where(or_(*scopes))
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [_to_record(row) for row in rows]

    async def get(self, key_id: str) -> KeyRecord | None:
        """The key with this public id, revoked or not, or ``None``."""
        query = select(*_RECORD_COLUMNS).where(api_keys.c.id == key_id)
        async with self._db.read() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _to_record(row)

    async def revoke(self, key_id: str, *, actor: AuditActor | None = None) -> bool:
        """Revoke a key; ``False`` when it does not exist or was revoked already."""
        live = (api_keys.c.id == key_id) & api_keys.c.revoked_at.is_(None)
        async with self._db.write() as conn:
            row = (await conn.execute(select(*_RECORD_COLUMNS).where(live).with_for_update())).first()
            if row is None:
                return False
            await conn.execute(update(api_keys).where(live).values(revoked_at=_utcnow()))
            await bump_keys_revision(conn)
            if actor is not None:
                before = key_view(_to_record(row))
                await append_entry(conn, "key.revoke", key_id, actor=actor, before=before)
        return True

    async def find_by_plaintext(
        self, key: str, *, now: datetime | None = None, include_expired: bool = False
    ) -> KeyRecord | None:
        """The usable key whose plaintext is ``key``; ``None`` if unknown, revoked or expired
        (expired keys are returned when ``include_expired``, so a caller can say why it refuses)."""
        _require_aware(now, "now")
        if not key or len(key) > _MAX_KEY_CHARS:
            return None
        query = select(*_RECORD_COLUMNS).where(api_keys.c.key_hash == hash_key(key))
        async with self._db.read() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        record = _to_record(row)
        if include_expired and record.revoked_at is None:
            return record
        return record if record.usable(now) else None

    async def active_hashes(
        self, *, now: datetime | None = None, include_expired: bool = False
    ) -> dict[str, KeyRecord]:
        """Hash → record for every usable key: the set a gateway keeps in memory to authenticate.
        With ``include_expired``, unrevoked expired keys too (so their callers hear why)."""
        moment = now or _utcnow()
        _require_aware(moment, "now")
        query = select(api_keys.c.key_hash, *_RECORD_COLUMNS).where(api_keys.c.revoked_at.is_(None))
        if not include_expired:
            query = query.where(or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > moment))
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        return {row.key_hash: _to_record(row) for row in rows}

    async def revision(self) -> int:
        """A counter that changes whenever a key, or the org, team or user it belongs to, changes;
        cheap to poll.

        Read it *before* :meth:`active_hashes` when reloading: a change landing between the two
        reads then shows up as a newer revision at the next poll instead of being missed.
        """
        async with self._db.read() as conn:
            return await read_keys_revision(conn)

    async def touch_last_used(self, key_ids: Iterable[str], *, at: datetime | None = None) -> None:
        """Record that these keys were used (at ``at``, default now) in as few statements as possible.

        Never moves ``last_used_at`` backwards, so batches flushed out of order by several
        processes leave the newest time. Does not bump the revision: usage is not a key change.
        """
        ids = sorted(set(key_ids))
        if not ids:
            return
        moment = at or _utcnow()
        _require_aware(moment, "at")
        async with self._db.write() as conn:
            for chunk in _chunks(ids, _TOUCH_CHUNK):
                await conn.execute(
                    update(api_keys)
                    .where(
                        api_keys.c.id.in_(chunk),
                        or_(api_keys.c.last_used_at.is_(None), api_keys.c.last_used_at < moment),
                    )
                    .values(last_used_at=moment)
                )


def _to_row(record: KeyRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "key_prefix": record.key_prefix,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "user_id": record.user_id,
        "team_id": record.team_id,
        "org_id": record.org_id,
        "roles": list(record.roles),
        "metadata": dict(record.metadata),
        "models": list(record.models),
        "pools": list(record.pools),
    }


def _to_record(row: Row[Any]) -> KeyRecord:
    m = row._mapping
    return KeyRecord(
        id=m["id"],
        name=m["name"],
        key_prefix=m["key_prefix"],
        created_at=m["created_at"],
        expires_at=m["expires_at"],
        revoked_at=m["revoked_at"],
        last_used_at=m["last_used_at"],
        user_id=m["user_id"],
        team_id=m["team_id"],
        org_id=m["org_id"],
        roles=tuple(m["roles"] or ()),
        metadata=dict(m["metadata"] or {}),
        models=tuple(m["models"] or ()),
        pools=tuple(m["pools"] or ()),
    )


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    return (items[i : i + size] for i in range(0, len(items), size))


def _require_aware(value: datetime | None, name: str) -> None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got a naive datetime")


def _utcnow() -> datetime:
    return datetime.now(UTC)
