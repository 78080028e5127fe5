"""Async engines for SQLite and PostgreSQL, set up so that the same queries behave alike on both.

:class:`Database` is what repositories hold: the engine plus the two ways in (``read`` and
``write``), both of which turn driver errors into :class:`~interlock.store.errors.StoreError`.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import orjson
from sqlalchemy import Connection, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.schema import Table

from interlock.store.errors import StoreError, translate_error
from interlock.store.urls import Backend, DatabaseURL, ensure_sqlite_parent

__all__ = ["SQLITE_BUSY_TIMEOUT_MS", "Database", "create_engine"]

SQLITE_BUSY_TIMEOUT_MS = 5_000
"""How long an SQLite connection waits for another process's write lock before giving up."""

_IMMEDIATE = "interlock_sqlite_immediate"

_SQLITE_PRAGMAS = (
    f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}",
    # WAL + NORMAL cannot corrupt the database; a power cut may lose only the last commits.
    # (WAL itself is a property of the file, set once by Database.enable_wal.)
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
)
_WAL_RETRY_FIRST_S = 0.01
_WAL_RETRY_MAX_S = 0.25


def create_engine(url: DatabaseURL, *, connect_timeout: float = 10.0) -> AsyncEngine:
    """Create the async engine for ``url``; no connection is made until first use."""
    json_options: dict[str, Any] = {"json_serializer": _dumps, "json_deserializer": orjson.loads}
    if url.backend == "sqlite":
        ensure_sqlite_parent(url)
        pool_options: dict[str, Any] = {}
        if url.in_memory:
            # An in-memory database lives in exactly one connection. SQLAlchemy's default
            # StaticPool hands that one connection to concurrent tasks at once, which mixes
            # their transactions; a queue pool of one makes them take turns instead.
            pool_options = {"poolclass": AsyncAdaptedQueuePool, "pool_size": 1, "max_overflow": 0}
        engine = create_async_engine(url.driver_url, **pool_options, **json_options)
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

    async def enable_wal(self) -> None:
        """Switch an SQLite file to write-ahead logging; a no-op for PostgreSQL and ``:memory:``.

        WAL is a property of the file, so doing it once at open is enough. It is not done per
        connection because SQLite answers "database is locked" at once, without waiting out the
        busy timeout, when two connections switch a new file together; here that is retried.
        """
        if self.backend != "sqlite" or self.url.in_memory:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SQLITE_BUSY_TIMEOUT_MS / 1000
        delay = _WAL_RETRY_FIRST_S
        while True:
            try:
                async with self.engine.connect() as conn:
                    raw = await conn.get_raw_connection()
                    # On the driver directly: SQLAlchemy would wrap it in BEGIN, and SQLite
                    # cannot change the journal mode inside a transaction.
                    driver: Any = raw.driver_connection
                    cursor = await driver.execute("PRAGMA journal_mode = WAL")
                    await cursor.close()
                return
            except (SQLAlchemyError, sqlite3.Error) as exc:
                if "locked" not in str(exc) or loop.time() >= deadline:
                    raise self.translate(exc) from exc
            await asyncio.sleep(delay)
            delay = min(delay * 2, _WAL_RETRY_MAX_S)

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
