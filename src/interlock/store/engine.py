"""Async engines for SQLite and PostgreSQL, set up so that the same queries behave alike on both.

:class:`Database` is what repositories hold: the engine plus the two ways in (``read`` and
``write``), both of which turn driver errors into :class:`~interlock.store.errors.StoreError`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import orjson
from sqlalchemy import Connection, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.schema import Table

from interlock.store.errors import StoreError, translate_error
from interlock.store.urls import Backend, DatabaseURL, ensure_sqlite_parent

__all__ = ["SQLITE_BUSY_TIMEOUT_MS", "Database", "create_engine"]

SQLITE_BUSY_TIMEOUT_MS = 5_000
"""How long an SQLite connection waits for another process's write lock before giving up."""

_IMMEDIATE = "interlock_sqlite_immediate"

_SQLITE_PRAGMAS = (
    # busy_timeout first: switching to WAL needs a lock that another process may hold right now.
    f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}",
    "PRAGMA journal_mode = WAL",
    # WAL + NORMAL cannot corrupt the database; a power cut may lose only the last commits.
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
)


def create_engine(url: DatabaseURL, *, connect_timeout: float = 10.0) -> AsyncEngine:
    """Create the async engine for ``url``; no connection is made until first use."""
    json_options: dict[str, Any] = {"json_serializer": _dumps, "json_deserializer": orjson.loads}
    if url.backend == "sqlite":
        ensure_sqlite_parent(url)
        engine = create_async_engine(url.driver_url, **json_options)
        event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
        event.listen(engine.sync_engine, "begin", _on_sqlite_begin)
        return engine
    return create_async_engine(
        url.driver_url,
        # Gateways outlive database restarts and failovers; a stale pooled connection is replaced
        # on checkout instead of failing the first write after the restart.
        pool_pre_ping=True,
        connect_args={"timeout": connect_timeout},
        **json_options,
    )


class Database:
    """An engine plus the rules every repository follows.

    ``read()`` opens a connection for queries; ``write()`` opens a transaction that commits on
    success. On SQLite a write transaction starts with ``BEGIN IMMEDIATE`` so that it takes the
    write lock up front and waits for it (busy timeout), instead of failing at its first write when
    another process wrote in between.
    """

    __slots__ = ("_writer", "engine", "url")

    def __init__(self, engine: AsyncEngine, url: DatabaseURL) -> None:
        self.engine = engine
        self.url = url
        self._writer = engine.execution_options(**{_IMMEDIATE: True})

    @property
    def backend(self) -> Backend:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.url.backend

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for queries; nothing is committed."""
        try:
            async with self.engine.connect() as conn:
                yield conn
        except (SQLAlchemyError, OSError) as exc:
            raise self.translate(exc) from exc

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that commits when the block ends and rolls back if it raises."""
        try:
            async with self._writer.begin() as conn:
                yield conn
        except (SQLAlchemyError, OSError) as exc:
            raise self.translate(exc) from exc

    def translate(self, exc: BaseException) -> StoreError:
        """The :class:`StoreError` to raise for ``exc``, with the password scrubbed."""
        return translate_error(exc, display_url=self.url.display, secret=self.url.password)

    def insert_ignoring_duplicates(self, table: Table) -> Insert:
        """``INSERT … ON CONFLICT DO NOTHING`` in the backend's dialect (safe to retry)."""
        if self.backend == "postgresql":
            return postgresql.insert(table).on_conflict_do_nothing()
        return sqlite.insert(table).on_conflict_do_nothing()


def _dumps(value: Any) -> str:
    return orjson.dumps(value, default=_json_default).decode()


def _json_default(value: object) -> object:
    # Callers may hand read-only mappings (MappingProxyType, …) and sets; store them as JSON too.
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, frozenset | set):
        return sorted(value, key=str)
    # Anything else is stored as its text: one odd value in a log record's ``extra`` must not
    # fail the whole batch it travels in.
    return str(value)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # SQLAlchemy emits BEGIN itself (see _on_sqlite_begin): the sqlite3 module's implicit
    # transactions skip SELECT and DDL, which would make migrations non-transactional.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def _on_sqlite_begin(conn: Connection) -> None:
    immediate = bool(conn.get_execution_options().get(_IMMEDIATE, False))
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
