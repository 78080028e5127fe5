"""Migrations: applied on open, a no-op on re-open, safe when several processes open at once."""

from __future__ import annotations

import asyncio
import sys

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection

from interlock.store import Store
from interlock.store.engine import Database, create_engine
from interlock.store.migrate import current_revision, head_revision
from interlock.store.schema import VERSION_TABLE, metadata
from interlock.store.urls import parse_database_url

EXPECTED_TABLES = {"api_keys", "request_log", "store_meta", VERSION_TABLE}


async def _revision_and_tables(url: str) -> tuple[str | None, set[str]]:
    parsed = parse_database_url(url)
    db = Database(create_engine(parsed), parsed)
    try:
        revision = await current_revision(db)
        async with db.read() as conn:
            tables = await conn.run_sync(lambda c: set(c.dialect.get_table_names(c)))
        return revision, tables
    finally:
        await db.engine.dispose()


async def test_fresh_database_is_empty_then_migrated_to_head(fresh_url: str, raw_rows) -> None:
    assert await _revision_and_tables(fresh_url) == (None, set())

    store = await Store.open(fresh_url)
    await store.close()

    revision, tables = await _revision_and_tables(fresh_url)
    assert revision == head_revision()
    assert tables >= EXPECTED_TABLES
    assert await raw_rows(fresh_url, "SELECT name, value FROM store_meta") == [
        {"name": "keys_revision", "value": 0}
    ]


async def test_reopen_is_a_noop_and_keeps_data(fresh_url: str, raw_rows) -> None:
    first = await Store.open(fresh_url)
    record, _ = await first.keys.create("kept")
    await first.close()

    second = await Store.open(fresh_url)
    try:
        assert await second.keys.get(record.id) == record
        assert await second.keys.revision() == 1
    finally:
        await second.close()
    versions = await raw_rows(fresh_url, f"SELECT version_num FROM {VERSION_TABLE}")
    assert versions == [{"version_num": head_revision()}]


async def test_concurrent_opens_all_succeed(fresh_url: str, raw_rows) -> None:
    # Without the advisory lock (PostgreSQL) or BEGIN IMMEDIATE (SQLite) the losers of this race
    # fail with "relation already exists" or a duplicate version row.
    stores = await asyncio.gather(*(Store.open(fresh_url) for _ in range(4)))
    try:
        for store in stores:
            assert await store.keys.revision() == 0
    finally:
        await asyncio.gather(*(store.close() for store in stores))
    versions = await raw_rows(fresh_url, f"SELECT version_num FROM {VERSION_TABLE}")
    assert versions == [{"version_num": head_revision()}]


# Each child imports everything, says "ready", and opens the store only when told "go", so that
# the opens really race.
_CHILD = """
import asyncio, sys
from interlock.store import Store

async def main() -> None:
    print("ready", flush=True)
    sys.stdin.readline()
    store = await Store.open(sys.argv[1])
    try:
        print("revision", await store.keys.revision(), flush=True)
    finally:
        await store.close()

asyncio.run(main())
"""


async def test_concurrent_opens_from_separate_processes(fresh_url: str, raw_rows) -> None:
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _CHILD,
            fresh_url,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    for child in children:
        assert child.stdout is not None
        assert await child.stdout.readline() == b"ready\n"
    for child in children:
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        await child.stdin.drain()
    results = [await child.communicate() for child in children]
    for child, (out, err) in zip(children, results, strict=True):
        assert child.returncode == 0, err.decode()[-2000:]
        assert out == b"revision 0\n"
    versions = await raw_rows(fresh_url, f"SELECT version_num FROM {VERSION_TABLE}")
    assert versions == [{"version_num": head_revision()}]


async def test_tables_match_the_schema_module(store: Store, store_url: str) -> None:
    # A change to interlock.store.schema without a migration (or the reverse) shows up here.
    parsed = parse_database_url(store_url)
    engine = create_engine(parsed)

    def diff(conn: Connection) -> list[object]:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return list(compare_metadata(context, metadata))

    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
    finally:
        await engine.dispose()
