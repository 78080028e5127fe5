"""Opening, pinging and closing the store; URLs; errors from dead databases; the public API."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import interlock.store
from interlock.store import Store, StoreError, StoreUnavailable
from interlock.store.urls import parse_database_url
from tests.postgres import PostgresServer

if TYPE_CHECKING:
    from tests.store.conftest import RawRows


def test_public_api_is_pinned() -> None:
    assert sorted(interlock.store.__all__) == [
        "AuditActor",
        "AuditEntry",
        "AuditRepository",
        "ChainReport",
        "KEY_PREFIX",
        "KeyRecord",
        "KeyRepository",
        "MEMBER_ROLES",
        "Membership",
        "OrgRecord",
        "RequestLogRepository",
        "RequestLogWriter",
        "RequestRecord",
        "RequestSink",
        "SessionRepository",
        "SpendLine",
        "SpendRepository",
        "SpendSummary",
        "StatusClass",
        "Store",
        "StoreConflict",
        "StoreError",
        "StoreUnavailable",
        "TeamRecord",
        "TenantRepository",
        "TrafficBucket",
        "TrafficRepository",
        "TrafficSeries",
        "UserRecord",
        "WriterStats",
        "hash_key",
        "key_view",
        "record_view",
    ]
    missing = [name for name in interlock.store.__all__ if not hasattr(interlock.store, name)]
    assert missing == [], f"exported but missing: {missing}"


async def test_a_dead_database_is_caught_as_a_store_error(dead_pg_url: str) -> None:
    with pytest.raises(StoreError) as info:
        await Store.open(dead_pg_url)
    assert type(info.value) is StoreUnavailable


@pytest.mark.parametrize(
    ("raw", "driver", "database"),
    [
        ("sqlite:////abs/dir/x.db", "sqlite+aiosqlite", "/abs/dir/x.db"),
        ("sqlite+aiosqlite:////abs/x.db", "sqlite+aiosqlite", "/abs/x.db"),
        ("sqlite:///:memory:", "sqlite+aiosqlite", ":memory:"),
        ("postgresql://u@h:5432/db", "postgresql+asyncpg", "db"),
        ("postgres://u@h/db", "postgresql+asyncpg", "db"),
        ("postgresql+psycopg://u:p@h/db", "postgresql+asyncpg", "db"),
    ],
)
def test_urls_are_converted_to_async_drivers(raw: str, driver: str, database: str) -> None:
    parsed = parse_database_url(raw)
    assert parsed.driver_url.drivername == driver
    assert parsed.driver_url.database == database
    assert parsed.backend == driver.split("+")[0]


def test_relative_sqlite_path_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    parsed = parse_database_url("sqlite:///.interlock/interlock.db")
    assert parsed.sqlite_path == tmp_path / ".interlock" / "interlock.db"


@pytest.mark.parametrize(
    "raw", ["mysql://root:pw-in-url@h/db", "postgresql://root:pw-in-url@h", "not a url pw-in-url"]
)
def test_unusable_urls_raise_value_error_without_the_password(raw: str) -> None:
    with pytest.raises(ValueError, match=r"URL") as info:
        parse_database_url(raw)
    assert "pw-in-url" not in str(info.value)


async def test_sqlite_file_and_parent_directory_are_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raw_rows: RawRows
) -> None:
    monkeypatch.chdir(tmp_path)
    store = await Store.open("sqlite:///.interlock/interlock.db")
    try:
        assert store.backend == "sqlite"
        assert store.url_display == "sqlite:///.interlock/interlock.db"
    finally:
        await store.close()
    assert (tmp_path / ".interlock" / "interlock.db").is_file()
    modes = await raw_rows("sqlite:///.interlock/interlock.db", "PRAGMA journal_mode")
    assert modes == [{"journal_mode": "wal"}]


async def test_sqlite_in_memory_works_under_concurrent_use() -> None:
    store = await Store.open("sqlite:///:memory:")
    try:
        created = await asyncio.gather(*(store.keys.create(f"mem{i}") for i in range(10)))
        assert await store.keys.revision() == 10
        record, plaintext = created[0]
        assert await store.keys.find_by_plaintext(plaintext) == record
    finally:
        await store.close()


async def test_ping_answers_true_on_a_live_database(store: Store) -> None:
    assert await store.ping() is True


async def test_url_display_masks_the_password(dead_pg_url: str, dead_password: str) -> None:
    store = await Store.open(dead_pg_url, migrate=False)
    try:
        assert dead_password not in store.url_display
        assert "***" in store.url_display
        assert store.backend == "postgresql"
    finally:
        await store.close()


async def test_open_on_a_dead_postgres_raises_store_unavailable_without_password(
    dead_pg_url: str, dead_password: str
) -> None:
    with pytest.raises(StoreUnavailable) as info:
        await Store.open(dead_pg_url)
    assert dead_password not in str(info.value)
    assert dead_password not in repr(info.value)
    assert "***" in str(info.value)


async def test_dead_postgres_pings_false_and_repositories_raise(dead_pg_url: str, dead_password: str) -> None:
    store = await Store.open(dead_pg_url, migrate=False)
    try:
        assert await store.ping() is False
        with pytest.raises(StoreUnavailable) as info:
            await store.keys.list()
        assert dead_password not in str(info.value)
        with pytest.raises(StoreUnavailable):
            await store.requests.get("r-1")
    finally:
        await store.close()


async def test_unopenable_sqlite_file_pings_false_and_raises(unopenable_sqlite_url: str) -> None:
    store = await Store.open(unopenable_sqlite_url, migrate=False)
    try:
        assert await store.ping() is False
        with pytest.raises(StoreUnavailable):
            await store.keys.revision()
    finally:
        await store.close()


async def test_open_fails_cleanly_for_an_unopenable_sqlite_file(unopenable_sqlite_url: str) -> None:
    with pytest.raises(StoreUnavailable, match="unavailable"):
        await Store.open(unopenable_sqlite_url)


async def test_missing_postgres_database_is_unavailable(pg_server: PostgresServer) -> None:
    url = pg_server.url("interlock_no_such_database")
    with pytest.raises(StoreUnavailable, match="does not exist"):
        await Store.open(url)
