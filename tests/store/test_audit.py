"""The audit log on SQLite and PostgreSQL: record, list newest first, filters, bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from interlock.store import Store
from interlock.store.engine import create_engine
from interlock.store.urls import parse_database_url

T0 = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def audit_store(store: Store, store_url: str) -> AsyncIterator[Store]:
    """The store with an empty audit log (the PostgreSQL session database is shared by tests)."""
    engine = create_engine(parse_database_url(store_url))
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM audit_log"))
            await conn.execute(text(f"UPDATE audit_chain_head SET seq = 0, hash = '{'0' * 64}'"))
    finally:
        await engine.dispose()
    yield store


async def test_record_returns_the_stored_entry(audit_store: Store) -> None:
    entry = await audit_store.audit.record(
        "drain", "chat/sim-a/m#0", actor_key_id="master", detail={"via": "ui", "in_flight": 3}, at=T0
    )
    assert entry.id > 0
    assert (entry.at, entry.actor_key_id, entry.action, entry.target) == (
        T0,
        "master",
        "drain",
        "chat/sim-a/m#0",
    )
    assert await audit_store.audit.list() == [entry]
    assert dict(entry.detail) == {"via": "ui", "in_flight": 3}


async def test_list_is_newest_first_and_filters(audit_store: Store) -> None:
    audit = audit_store.audit
    first = await audit.record("disable", "d1", actor_key_id="master", at=T0)
    second = await audit.record("enable", "d1", actor_key_id="key_a", at=T0 + timedelta(minutes=1))
    third = await audit.record("drain", "d2", actor_key_id=None, at=T0 + timedelta(minutes=2))
    assert await audit.list() == [third, second, first]
    assert await audit.list(target="d1") == [second, first]
    assert await audit.list(action="drain") == [third]
    assert await audit.list(actor_key_id="key_a") == [second]
    assert await audit.list(since=T0 + timedelta(minutes=1)) == [third, second]
    assert await audit.list(limit=1) == [third]


async def test_same_instant_entries_keep_insertion_order(audit_store: Store) -> None:
    entries = [
        await audit_store.audit.record("disable", f"d{i}", actor_key_id="master", at=T0) for i in range(3)
    ]
    assert await audit_store.audit.list() == entries[::-1]


async def test_timestamps_default_to_now_in_utc(audit_store: Store) -> None:
    before = datetime.now(UTC)
    entry = await audit_store.audit.record("enable", "d1", actor_key_id="master")
    assert before <= entry.at <= datetime.now(UTC)
    [stored] = await audit_store.audit.list()
    assert stored.at.tzinfo is not None
    assert abs((stored.at - entry.at).total_seconds()) < 0.001


async def test_bad_input_is_refused_clearly(audit_store: Store) -> None:
    audit = audit_store.audit
    with pytest.raises(ValueError, match="action and a target"):
        await audit.record("", "d1", actor_key_id="master")
    with pytest.raises(ValueError, match="timezone-aware"):
        await audit.record("drain", "d1", actor_key_id="master", at=datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="limit"):
        await audit.list(limit=0)
    with pytest.raises(ValueError, match="timezone-aware"):
        await audit.list(since=datetime(2030, 1, 1))
    assert await audit.list() == []
