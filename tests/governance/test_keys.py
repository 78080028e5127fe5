"""The key cache against a real SQLite store: it keeps refreshing whatever goes wrong, records
``last_used_at`` in batches off the hot path, and knows the master key only by its hash."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from interlock.config.secrets import hash_secret
from interlock.core.errors import AuthenticationFailed
from interlock.governance.keys import KeyCache
from interlock.store import KeyRepository, Store, StoreUnavailable

MASTER = "sk-master-" + "Qz4vN8rT2kLm7XcB9wHp3JfD"


class FlakyKeys(KeyRepository):
    """The store's keys, failing on chosen calls and counting the usage writes."""

    def __init__(self, store: Store) -> None:
        super().__init__(store._db)
        self.revision_calls = 0
        self.fail_revision_on: dict[int, BaseException] = {}
        self.touches: list[set[str]] = []
        self.touch_error: BaseException | None = None

    async def revision(self) -> int:
        self.revision_calls += 1
        error = self.fail_revision_on.pop(self.revision_calls, None)
        if error is not None:
            raise error
        return await super().revision()

    async def touch_last_used(self, key_ids: Iterable[str], *, at: datetime | None = None) -> None:
        ids = set(key_ids)
        if self.touch_error is not None:
            error, self.touch_error = self.touch_error, None
            raise error
        self.touches.append(ids)
        await super().touch_last_used(ids, at=at)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite:///{tmp_path / 'keys.db'}")
    try:
        yield opened
    finally:
        await opened.close()


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Wait (up to a generous bound) until ``condition()`` holds."""
    async with asyncio.timeout(timeout_s):
        while True:
            if condition():
                return
            await asyncio.sleep(0.01)


async def eventually_refused(cache: KeyCache, key: str, timeout_s: float = 10.0) -> None:
    """Wait (up to a generous bound) until ``key`` fails; fail the test if it never does."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        try:
            await cache.authenticate(key)
        except AuthenticationFailed:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the revocation never took effect")


@pytest.mark.parametrize(
    "error", [RuntimeError("unexpected"), StoreUnavailable("down"), ValueError("bad row")], ids=str
)
async def test_refresh_goes_on_after_any_error(store: Store, error: BaseException) -> None:
    repo = FlakyKeys(store)
    record, key = await store.keys.create("service")
    cache = KeyCache(repo, None, refresh_interval_s=0.02, touch_interval_s=3600)
    repo.fail_revision_on = {2: error}  # the first poll after start() fails
    await cache.start()
    try:
        assert (await cache.authenticate(key)).key_id == record.id
        await until(lambda: repo.revision_calls >= 3)  # the failed poll, and one after it
        await store.keys.revoke(record.id)  # by "another process": this cache is not told
        await eventually_refused(cache, key)
    finally:
        await cache.stop()


async def test_last_used_is_written_in_one_batch_not_per_request(store: Store) -> None:
    repo = FlakyKeys(store)
    a, key_a = await store.keys.create("a")
    b, key_b = await store.keys.create("b")
    unused, _ = await store.keys.create("unused")
    cache = KeyCache(repo, hash_secret(MASTER), touch_interval_s=3600)
    await cache.start()
    try:
        for _ in range(100):
            await cache.authenticate(key_a)
        await cache.authenticate(key_b)
        await cache.authenticate(MASTER)
        assert repo.touches == []  # nothing written on the request path
        assert (await store.keys.get(a.id)).last_used_at is None  # type: ignore[union-attr]
        await cache.flush_usage()
        assert repo.touches == [{a.id, b.id}]
        await cache.flush_usage()  # nothing new: no write
        assert len(repo.touches) == 1
    finally:
        await cache.stop()
    for key_id in (a.id, b.id):
        assert (await store.keys.get(key_id)).last_used_at is not None  # type: ignore[union-attr]
    assert (await store.keys.get(unused.id)).last_used_at is None  # type: ignore[union-attr]


async def test_usage_is_flushed_periodically_and_kept_when_a_write_fails(store: Store) -> None:
    repo = FlakyKeys(store)
    record, key = await store.keys.create("a")
    cache = KeyCache(repo, None, touch_interval_s=0.02)
    repo.touch_error = RuntimeError("disk full")
    await cache.start()
    try:
        await cache.authenticate(key)
        await until(lambda: bool(repo.touches))
        assert repo.touches == [{record.id}]  # the failed write's ids were kept for the next one
    finally:
        await cache.stop()
    assert (await store.keys.get(record.id)).last_used_at is not None  # type: ignore[union-attr]


async def test_stop_writes_the_last_batch(store: Store) -> None:
    record, key = await store.keys.create("a")
    cache = KeyCache(store.keys, None, touch_interval_s=3600)
    await cache.start()
    await cache.authenticate(key)
    await cache.stop()
    assert (await store.keys.get(record.id)).last_used_at is not None  # type: ignore[union-attr]


async def test_the_master_key_is_known_by_its_hash_only(store: Store) -> None:
    cache = KeyCache(store.keys, hash_secret(MASTER))
    assert (await cache.authenticate(MASTER)).is_master
    with pytest.raises(AuthenticationFailed):
        await cache.authenticate(hash_secret(MASTER))  # the hash itself is not a key
    assert MASTER not in repr(vars(cache))


async def test_a_key_whose_team_is_disabled_elsewhere_stops_within_a_poll(store: Store) -> None:
    org = await store.tenants.create_org("acme")
    team = await store.tenants.create_team(org.id, "search")
    record, key = await store.keys.create("svc", team_id=team.id, roles=["developer"])
    cache = KeyCache(store.keys, None, refresh_interval_s=0.02, touch_interval_s=3600)
    cache.attach(store.keys, store.tenants)
    await cache.start()
    try:
        principal = await cache.authenticate(key)
        assert (principal.key_id, principal.team_id, principal.org_id) == (record.id, team.id, org.id)
        await store.tenants.update_team(team.id, {"disabled": True})  # not told: it must notice
        await eventually_refused(cache, key)
        with pytest.raises(AuthenticationFailed, match="disabled or deleted"):
            await cache.authenticate(key)
    finally:
        await cache.stop()


async def test_an_expired_key_is_refused_saying_when(store: Store) -> None:
    expired_at = datetime(2020, 5, 1, 12, 0, tzinfo=UTC)
    _, key = await store.keys.create("old", expires_at=expired_at)
    cache = KeyCache(store.keys, None)
    for _ in range(2):  # first from the store, then from memory
        with pytest.raises(AuthenticationFailed, match="expired at 2020-05-01T12:00:00"):
            await cache.authenticate(key)
    await cache.refresh()
    with pytest.raises(AuthenticationFailed, match="expired at 2020-05-01"):
        await cache.authenticate(key)
