"""Dashboard sessions in the store: the shared signing secret, and sessions revoked by signing out.

The signing secret is random, made once by whichever process asks first (``INSERT … ON CONFLICT
DO NOTHING``, then read back), so every worker and every instance sharing the database signs and
verifies with the same one. It has nothing to do with the master key: knowing one tells nothing
about the other. Deleting its row (then restarting) signs everyone out.

Signing out records the session's nonce until the session would have expired anyway; a revoked
cookie replayed later is refused. Expired records are purged as new ones are written.
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime

from sqlalchemy import delete, select

from interlock.store.engine import Database
from interlock.store.schema import store_secrets, ui_session_revocations

__all__ = ["SessionRepository"]

SIGNING_SECRET = "ui_session_signing_key"
_SECRET_BYTES = 32
_MAX_NONCE_CHARS = 64


class SessionRepository:
    """The ``store_secrets`` row for session signing and the ``ui_session_revocations`` table."""

    __slots__ = ("_db",)

    def __init__(self, db: Database) -> None:
        self._db = db

    async def signing_secret(self) -> bytes:
        """The shared session-signing secret, created on first use."""
        query = select(store_secrets.c.value).where(store_secrets.c.name == SIGNING_SECRET)
        async with self._db.read() as conn:
            value = (await conn.execute(query)).scalar_one_or_none()
        if value is None:
            candidate = base64.urlsafe_b64encode(secrets.token_bytes(_SECRET_BYTES)).decode()
            statement = self._db.insert_ignoring_duplicates(store_secrets).values(
                name=SIGNING_SECRET, value=candidate, created_at=datetime.now(UTC)
            )
            async with self._db.write() as conn:
                await conn.execute(statement)
                value = (await conn.execute(query)).scalar_one()
        return base64.urlsafe_b64decode(value)

    async def revoke(self, nonce: str, expires_at: datetime) -> None:
        """Refuse the session with ``nonce`` from now on (until ``expires_at``, when it ends anyway)."""
        if not nonce or len(nonce) > _MAX_NONCE_CHARS:
            raise ValueError("not a session nonce")
        now = datetime.now(UTC)
        statement = self._db.insert_ignoring_duplicates(ui_session_revocations).values(
            nonce=nonce, expires_at=expires_at
        )
        async with self._db.write() as conn:
            await conn.execute(
                delete(ui_session_revocations).where(ui_session_revocations.c.expires_at <= now)
            )
            await conn.execute(statement)

    async def is_revoked(self, nonce: str) -> bool:
        """Whether the session with ``nonce`` was signed out."""
        query = select(ui_session_revocations.c.nonce).where(ui_session_revocations.c.nonce == nonce)
        async with self._db.read() as conn:
            return (await conn.execute(query)).first() is not None
