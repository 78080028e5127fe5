"""API keys: creation, lookup by plaintext, revocation, and the revision counter gateways poll.

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

from sqlalchemy import Row, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from interlock.store.engine import Database
from interlock.store.schema import KEYS_REVISION, api_keys, store_meta

__all__ = ["KEY_PREFIX", "KeyRecord", "KeyRepository", "hash_key"]

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

    def usable(self, now: datetime | None = None) -> bool:
        """Whether the key authenticates at ``now``: not revoked and not expired."""
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > (now or _utcnow())


def hash_key(plaintext: str) -> str:
    """The SHA-256 hex digest under which a key is stored and looked up."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


class KeyRepository:
    """API keys in the ``api_keys`` table. Every create and revoke bumps ``keys_revision``."""

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
    ) -> tuple[KeyRecord, str]:
        """Create a key; return its record and its plaintext, which is never available again."""
        if not name.strip():
            raise ValueError("a key needs a non-empty name")
        if isinstance(roles, str):
            raise TypeError("roles must be a collection of role names, not one string")
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
        )
        row = _to_row(record)
        async with self._db.write() as conn:
            await conn.execute(api_keys.insert().values(key_hash=hash_key(plaintext), **row))
            await _bump_revision(conn)
        return record, plaintext

    async def list(self, include_revoked: bool = False) -> builtins.list[KeyRecord]:
        """All keys, oldest first; revoked ones only when asked. Expired keys are included."""
        query = select(*_RECORD_COLUMNS).order_by(api_keys.c.created_at, api_keys.c.id)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [_to_record(row) for row in rows]

    async def get(self, key_id: str) -> KeyRecord | None:
        """The key with this public id, revoked or not, or ``None``."""
        query = select(*_RECORD_COLUMNS).where(api_keys.c.id == key_id)
        async with self._db.read() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _to_record(row)

    async def revoke(self, key_id: str) -> bool:
        """Revoke a key; ``False`` when it does not exist or was revoked already."""
        statement = (
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=_utcnow())
        )
        async with self._db.write() as conn:
            revoked = (await conn.execute(statement)).rowcount == 1
            if revoked:
                await _bump_revision(conn)
        return revoked

    async def find_by_plaintext(self, key: str, *, now: datetime | None = None) -> KeyRecord | None:
        """The usable key whose plaintext is ``key``; ``None`` if unknown, revoked or expired."""
        _require_aware(now, "now")
        if not key or len(key) > _MAX_KEY_CHARS:
            return None
        query = select(*_RECORD_COLUMNS).where(api_keys.c.key_hash == hash_key(key))
        async with self._db.read() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        record = _to_record(row)
        return record if record.usable(now) else None

    async def active_hashes(self, *, now: datetime | None = None) -> dict[str, KeyRecord]:
        """Hash → record for every usable key: the set a gateway keeps in memory to authenticate."""
        moment = now or _utcnow()
        _require_aware(moment, "now")
        query = select(api_keys.c.key_hash, *_RECORD_COLUMNS).where(
            api_keys.c.revoked_at.is_(None),
            or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > moment),
        )
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        return {row.key_hash: _to_record(row) for row in rows}

    async def revision(self) -> int:
        """A counter that changes whenever a key is created or revoked; cheap to poll.

        Read it *before* :meth:`active_hashes` when reloading: a change landing between the two
        reads then shows up as a newer revision at the next poll instead of being missed.
        """
        query = select(store_meta.c.value).where(store_meta.c.name == KEYS_REVISION)
        async with self._db.read() as conn:
            value = (await conn.execute(query)).scalar_one_or_none()
        return int(value or 0)

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


async def _bump_revision(conn: AsyncConnection) -> None:
    await conn.execute(
        update(store_meta).where(store_meta.c.name == KEYS_REVISION).values(value=store_meta.c.value + 1)
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
    )


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    return (items[i : i + size] for i in range(0, len(items), size))


def _require_aware(value: datetime | None, name: str) -> None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got a naive datetime")


def _utcnow() -> datetime:
    return datetime.now(UTC)
