"""API keys on SQLite and PostgreSQL: plaintext once, hashes only, lookups, revocation, revision."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest

from interlock.store import KEY_PREFIX, KeyRecord, Store, hash_key

KEY_PATTERN = re.compile(r"sk-il-[A-Za-z0-9_-]{40}")


def test_hash_key_is_sha256_hex_of_the_utf8_key() -> None:
    assert hash_key("sk-il-abc") == hashlib.sha256(b"sk-il-abc").hexdigest()
    assert hash_key("sk-il-abc") != hash_key("sk-il-abd")


async def test_create_returns_plaintext_once_and_stores_only_its_hash(
    store: Store, store_url: str, raw_rows
) -> None:
    record, plaintext = await store.keys.create(
        "ci bot", roles=["user", "admin"], metadata={"owner": "ops"}, user_id="u1", team_id="t1"
    )
    assert KEY_PATTERN.fullmatch(plaintext)
    assert plaintext.startswith(KEY_PREFIX)
    assert record.id.startswith("key_")
    assert record.key_prefix == plaintext[: len(record.key_prefix)]
    assert len(record.key_prefix) < len(plaintext)
    assert record.roles == ("user", "admin")
    assert record.metadata == {"owner": "ops"}
    assert (record.user_id, record.team_id, record.org_id) == ("u1", "t1", None)
    assert record.created_at.tzinfo is not None
    assert plaintext not in repr(record)
    assert await store.keys.get(record.id) == record

    rows = await raw_rows(store_url, "SELECT * FROM api_keys")
    assert len(rows) == 1
    assert rows[0]["key_hash"] == hash_key(plaintext) != plaintext
    for column, value in rows[0].items():
        assert plaintext not in str(value), f"plaintext key found in column {column}"


async def test_every_key_is_distinct(store: Store) -> None:
    created = [await store.keys.create(f"k{i}") for i in range(5)]
    assert len({record.id for record, _ in created}) == 5
    assert len({plaintext for _, plaintext in created}) == 5


async def test_find_by_plaintext_valid_revoked_expired_unknown(store: Store) -> None:
    now = datetime.now(UTC)
    valid, valid_key = await store.keys.create("valid", expires_at=now + timedelta(days=1))
    revoked, revoked_key = await store.keys.create("revoked")
    _, expired_key = await store.keys.create("expired", expires_at=now - timedelta(seconds=1))
    assert await store.keys.revoke(revoked.id) is True

    assert await store.keys.find_by_plaintext(valid_key) == valid
    assert await store.keys.find_by_plaintext(revoked_key) is None
    assert await store.keys.find_by_plaintext(expired_key) is None
    assert await store.keys.find_by_plaintext("sk-il-" + "x" * 40) is None
    assert await store.keys.find_by_plaintext("") is None
    assert await store.keys.find_by_plaintext("sk-il-" + "y" * 5000) is None
    # The same key is expired when looked up after its expiry.
    assert await store.keys.find_by_plaintext(valid_key, now=now + timedelta(days=2)) is None


async def test_active_hashes_holds_only_usable_keys(store: Store) -> None:
    now = datetime.now(UTC)
    active, active_key = await store.keys.create("active")
    later, later_key = await store.keys.create("later", expires_at=now + timedelta(hours=1))
    revoked, _ = await store.keys.create("revoked")
    await store.keys.create("expired", expires_at=now - timedelta(hours=1))
    await store.keys.revoke(revoked.id)

    hashes = await store.keys.active_hashes()
    assert hashes == {hash_key(active_key): active, hash_key(later_key): later}
    assert await store.keys.active_hashes(now=now + timedelta(hours=2)) == {hash_key(active_key): active}


async def test_revision_bumps_on_create_and_revoke_only(store: Store) -> None:
    assert await store.keys.revision() == 0
    record, _ = await store.keys.create("a")
    assert await store.keys.revision() == 1
    await store.keys.touch_last_used([record.id])
    assert await store.keys.revision() == 1
    assert await store.keys.revoke(record.id) is True
    assert await store.keys.revision() == 2
    assert await store.keys.revoke(record.id) is False
    assert await store.keys.revoke("key_unknown") is False
    assert await store.keys.revision() == 2


async def test_list_and_get(store: Store) -> None:
    first, _ = await store.keys.create("first")
    second, _ = await store.keys.create("second")
    await store.keys.revoke(first.id)

    assert [k.id for k in await store.keys.list()] == [second.id]
    listed = await store.keys.list(include_revoked=True)
    assert [k.id for k in listed] == [first.id, second.id]
    revoked = listed[0]
    assert revoked.revoked_at is not None
    assert not revoked.usable()
    assert await store.keys.get("key_unknown") is None


async def test_touch_last_used_batches_and_never_goes_back(store: Store) -> None:
    a, _ = await store.keys.create("a")
    b, _ = await store.keys.create("b")
    c, _ = await store.keys.create("c")
    t1 = datetime(2030, 1, 1, tzinfo=UTC)
    t0 = t1 - timedelta(minutes=5)

    await store.keys.touch_last_used([a.id, b.id, a.id, "key_unknown"], at=t1)
    await store.keys.touch_last_used(iter([a.id]), at=t0)  # an older, late batch
    await store.keys.touch_last_used([])

    assert (await _get(store, a.id)).last_used_at == t1
    assert (await _get(store, b.id)).last_used_at == t1
    assert (await _get(store, c.id)).last_used_at is None


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"name": "  "}, ValueError),
        ({"name": "k", "roles": "admin"}, TypeError),
        ({"name": "k", "expires_at": datetime(2030, 1, 1)}, ValueError),
    ],
)
async def test_bad_create_arguments_are_rejected(
    store: Store, kwargs: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        await store.keys.create(**kwargs)  # type: ignore[arg-type]
    assert await store.keys.list(include_revoked=True) == []
    assert await store.keys.revision() == 0


async def test_naive_now_is_rejected(store: Store) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.keys.active_hashes(now=datetime(2030, 1, 1))


def test_usable_is_false_for_revoked_or_expired_records() -> None:
    now = datetime.now(UTC)
    base = KeyRecord(id="key_x", name="x", key_prefix="sk-il-abcdef", created_at=now)
    assert base.usable(now)
    assert not KeyRecord(
        id="key_x", name="x", key_prefix="sk-il-abcdef", created_at=now, revoked_at=now
    ).usable(now)
    assert not KeyRecord(
        id="key_x", name="x", key_prefix="sk-il-abcdef", created_at=now, expires_at=now
    ).usable(now)


async def _get(store: Store, key_id: str) -> KeyRecord:
    record = await store.keys.get(key_id)
    assert record is not None
    return record
