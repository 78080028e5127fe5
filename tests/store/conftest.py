"""Fixtures for the store tests: every repository test runs on SQLite and on real PostgreSQL.

PostgreSQL tests use a database created for this test session (``interlock_test_<random>``) and
dropped at its end, so parallel runs never collide and nothing is left behind; tables are emptied
after each test. Tests that need an empty database (migrations) get one of their own.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from interlock.store import Store
from interlock.store.engine import create_engine
from interlock.store.urls import parse_database_url
from tests.postgres import PostgresServer


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
            await conn.execute("TRUNCATE api_keys, request_log, team_members, users, teams, orgs, audit_log")
            await conn.execute("UPDATE store_meta SET value = 0")
            await conn.execute(f"UPDATE audit_chain_head SET seq = 0, hash = '{'0' * 64}'")
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
