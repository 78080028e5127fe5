"""Dashboard session records on SQLite and PostgreSQL: one signing secret for every process, and
revocations that hold until the session would have expired."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from interlock.store import Store


async def test_every_process_gets_the_same_signing_secret(store: Store, store_url: str) -> None:
    other = await Store.open(store_url)
    try:
        secrets = await asyncio.gather(
            *(s.sessions.signing_secret() for s in (store, other, store, other, store))
        )
    finally:
        await other.close()
    assert len(set(secrets)) == 1
    assert len(secrets[0]) == 32
    assert await store.sessions.signing_secret() == secrets[0]


async def test_a_revoked_session_stays_revoked_and_others_do_not(store: Store) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    assert not await store.sessions.is_revoked("n1")
    await store.sessions.revoke("n1", later)
    await store.sessions.revoke("n1", later)  # signing out twice is fine
    assert await store.sessions.is_revoked("n1")
    assert not await store.sessions.is_revoked("n2")


async def test_expired_revocations_are_purged(store: Store, store_url: str, raw_rows) -> None:
    now = datetime.now(UTC)
    await store.sessions.revoke("old", now - timedelta(seconds=1))
    await store.sessions.revoke("new", now + timedelta(hours=1))
    rows = await raw_rows(store_url, "SELECT nonce FROM ui_session_revocations")
    nonces = {row["nonce"] for row in rows}  # (PostgreSQL's database is shared by this session's tests)
    assert "new" in nonces and "old" not in nonces


async def test_a_bad_nonce_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="nonce"):
        await store.sessions.revoke("x" * 65, datetime.now(UTC))
