"""Fixtures for the store tests: every repository test runs on SQLite and on real PostgreSQL.

PostgreSQL tests use a database created for this test session (``interlock_test_<random>``) and
dropped at its end, so parallel runs never collide and nothing is left behind; tables are emptied
after each test. Tests that need an empty database (migrations) get one of their own.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text

from interlock.store import Store
from interlock.store.engine import create_engine
from interlock.store.urls import parse_database_url

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USERS = ("postgres", "root")
PG_MAINTENANCE_DB = "test"


@dataclass(frozen=True, slots=True)
class PostgresServer:
    """The test PostgreSQL server, or why it cannot be used."""

    user: str | None
    session_db: str | None
    skip_reason: str | None

    def url(self, database: str | None = None) -> str:
        """A user-style URL for ``database`` (default: this session's database)."""
        if self.skip_reason is not None:
            pytest.skip(self.skip_reason)
        return f"postgresql://{self.user}@{PG_HOST}:{PG_PORT}/{database or self.session_db}"

    async def admin(self, database: str = PG_MAINTENANCE_DB) -> asyncpg.Connection:
        """A raw asyncpg connection for set-up and clean-up."""
        return await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=self.user, database=database)

    async def create_database(self) -> str:
        """Create an empty database with a unique name and return its name."""
        name = f"interlock_test_{secrets.token_hex(6)}"
        conn = await self.admin()
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return name

    async def drop_database(self, name: str) -> None:
        """Drop a database made by :meth:`create_database`, disconnecting whoever still uses it."""
        conn = await self.admin()
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def _find_user() -> tuple[str | None, str]:
    errors = []
    for user in PG_USERS:
        try:
            conn = await asyncpg.connect(
                host=PG_HOST, port=PG_PORT, user=user, database=PG_MAINTENANCE_DB, timeout=3
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            errors.append(f"{user}: {type(exc).__name__}: {exc}")
            continue
        await conn.close()
        return user, ""
    return None, "; ".join(errors)


def _run(coro: Any) -> Any:
    # Session set-up runs outside pytest-asyncio's per-test loops, on a private loop of its own.
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """The PostgreSQL server with a fresh database for this session (or a skip reason)."""
    user, errors = _run(_find_user())
    if user is None:
        reason = f"PostgreSQL at {PG_HOST}:{PG_PORT} is unreachable ({errors}); start it with .ci/run"
        yield PostgresServer(None, None, reason)
        return
    server = PostgresServer(user, None, None)
    name = _run(server.create_database())
    server = PostgresServer(user, name, None)
    try:
        yield server
    finally:
        _run(server.drop_database(name))


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """Runs the test once per backend."""
    return str(request.param)


@pytest.fixture
async def store_url(backend: str, tmp_path: Path, pg_server: PostgresServer) -> AsyncIterator[str]:
    """A migrated-or-empty database URL for this test, emptied again afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'interlock.db'}"
        return
    url = pg_server.url()
    yield url
    await _truncate(pg_server)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    """An open store on this test's database."""
    opened = await Store.open(store_url)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def fresh_url(backend: str, tmp_path: Path, pg_server: PostgresServer) -> AsyncIterator[str]:
    """The URL of a database that exists but has no tables yet."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh' / 'interlock.db'}"
        return
    url = pg_server.url()  # skips here when PostgreSQL is absent
    name = await pg_server.create_database()
    try:
        yield url.rsplit("/", 1)[0] + "/" + name
    finally:
        await pg_server.drop_database(name)


async def _truncate(pg_server: PostgresServer) -> None:
    assert pg_server.session_db is not None
    conn = await pg_server.admin(pg_server.session_db)
    try:
        exists = await conn.fetchval("SELECT to_regclass('public.api_keys') IS NOT NULL")
        if exists:
            await conn.execute("TRUNCATE api_keys, request_log")
            await conn.execute("UPDATE store_meta SET value = 0")
    finally:
        await conn.close()


RawRows = Callable[[str, str], Awaitable[list[dict[str, Any]]]]


@pytest.fixture
def raw_rows() -> RawRows:
    """Read rows past the repositories, as the database holds them: ``await raw_rows(url, sql)``."""

    async def read(url: str, sql: str) -> list[dict[str, Any]]:
        engine = create_engine(parse_database_url(url))
        try:
            async with engine.connect() as conn:
                result = await conn.execute(text(sql))
                return [dict(row._mapping) for row in result]
        finally:
            await engine.dispose()

    return read


@pytest.fixture
def dead_password() -> str:
    """The password in :func:`dead_pg_url`; it must never show up in an error message."""
    return "hunter2-Secret-pw"


@pytest.fixture
def dead_pg_url(dead_password: str) -> str:
    """A PostgreSQL URL, with a password, for a loopback port where nothing listens."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"postgresql://interlock:{dead_password}@127.0.0.1:{port}/interlock"


@pytest.fixture
async def unopenable_sqlite_url(tmp_path: Path) -> AsyncIterator[str]:
    """An SQLite URL whose "file" is a directory: SQLite cannot open it, like a disk gone away."""
    before = set(threading.enumerate())
    yield f"sqlite:///{tmp_path}"
    # aiosqlite (0.22) leaves its worker thread finishing a failed connect after the caller has
    # moved on; if this test's event loop closes first, the thread raises "Event loop is closed"
    # into whichever test runs next. Let those threads finish while the loop is still open.
    for thread in set(threading.enumerate()) - before:
        if thread.name.endswith("(_connection_worker_thread)"):
            thread.join(timeout=5)
