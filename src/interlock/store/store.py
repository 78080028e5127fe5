"""The store: one database (SQLite or PostgreSQL, the URL decides) and its repositories."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from interlock.store.audit import AuditRepository
from interlock.store.engine import Database, create_engine
from interlock.store.errors import translate_error
from interlock.store.keys import KeyRepository
from interlock.store.migrate import upgrade_to_head
from interlock.store.requests import RequestLogRepository
from interlock.store.sessions import SessionRepository
from interlock.store.spend import SpendRepository
from interlock.store.tenants import TenantRepository
from interlock.store.traffic import TrafficRepository
from interlock.store.urls import Backend, parse_database_url

__all__ = ["Store"]


class Store:
    """The gateway's database. Make one with :meth:`open`; close it with :meth:`close`."""

    __slots__ = ("_audit", "_db", "_keys", "_requests", "_sessions", "_spend", "_tenants", "_traffic")

    def __init__(self, db: Database) -> None:
        self._db = db
        self._keys = KeyRepository(db)
        self._requests = RequestLogRepository(db)
        self._spend = SpendRepository(db)
        self._traffic = TrafficRepository(db)
        self._audit = AuditRepository(db)
        self._sessions = SessionRepository(db)
        self._tenants = TenantRepository(db)

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True, connect_timeout: float = 10.0) -> Store:
        """Connect to ``url`` and bring its schema to the newest migration.

        ``url`` is written as users write it (``sqlite:///.interlock/interlock.db``,
        ``postgresql://user:pw@host:5432/db``). Raises ``ValueError`` for a URL that is not one of
        those, and :class:`~interlock.store.errors.StoreUnavailable` when the database cannot be
        reached. With ``migrate=False`` nothing connects until first use, and an SQLite file is
        left as it is (no switch to WAL).
        """
        parsed = parse_database_url(url)
        try:
            engine = create_engine(parsed, connect_timeout=connect_timeout)
        except OSError as exc:  # the SQLite file's directory could not be created
            raise translate_error(exc, display_url=parsed.display, secret=parsed.password) from exc
        store = cls(Database(engine, parsed))
        if migrate:
            try:
                await store._db.enable_wal()
                await upgrade_to_head(store._db)
            except BaseException:
                await store.close()
                raise
        return store

    @property
    def keys(self) -> KeyRepository:
        """API keys."""
        return self._keys

    @property
    def tenants(self) -> TenantRepository:
        """Orgs, teams, users and team memberships."""
        return self._tenants

    @property
    def requests(self) -> RequestLogRepository:
        """The request log."""
        return self._requests

    @property
    def spend(self) -> SpendRepository:
        """Spend sums over the request log, by key, model and team."""
        return self._spend

    @property
    def traffic(self) -> TrafficRepository:
        """Requests, errors, spend and latency over time, from the request log."""
        return self._traffic

    @property
    def audit(self) -> AuditRepository:
        """The hash-chained audit log of administrative changes."""
        return self._audit

    @property
    def sessions(self) -> SessionRepository:
        """The dashboard's session-signing secret and signed-out sessions."""
        return self._sessions

    @property
    def url_display(self) -> str:
        """The database URL as given, with any password shown as ``***``."""
        return self._db.url.display

    @property
    def backend(self) -> Backend:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._db.backend

    # A timeout here means "answer False", not "cancel me", so asyncio.timeout() cannot replace it.
    async def ping(self, timeout: float = 2.0) -> bool:  # noqa: ASYNC109
        """Whether the database answers ``SELECT 1`` within ``timeout`` seconds. Never raises."""
        try:
            async with asyncio.timeout(timeout), self._db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            # A health probe must answer, whatever a driver throws (timeouts included).
            return False
        return True

    async def close(self) -> None:
        """Close every pooled connection. The store must not be used afterwards."""
        await self._db.engine.dispose()
