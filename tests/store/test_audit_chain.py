"""The audit log's hash chain on SQLite and PostgreSQL: intact chains verify; an edited, deleted or
reordered entry is found and named; appends from many stores at once still form one chain; entries
written before the chain existed are chained by the migration."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from alembic import command
from sqlalchemy import Connection, Executable, text, update

from interlock.store import AuditActor, Store
from interlock.store.audit_chain import GENESIS_HASH, entry_hash
from interlock.store.engine import Database, create_engine
from interlock.store.migrate import alembic_config
from interlock.store.schema import audit_log
from interlock.store.urls import parse_database_url

ACTOR = AuditActor("key_ops", "ops")


async def _sql(url: str, *statements: str | Executable) -> None:
    engine = create_engine(parse_database_url(url))
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement) if isinstance(statement, str) else statement)
    finally:
        await engine.dispose()


async def _five(store: Store) -> None:
    org = await store.tenants.create_org("acme", actor=ACTOR)
    await store.tenants.update_org(org.id, {"name": "acme2"}, actor=ACTOR)
    await store.keys.create("k", actor=ACTOR)
    await store.audit.record(
        "disable", "chat/a#0", actor=ACTOR, before={"disabled": False}, after={"disabled": True}
    )
    await store.audit.record(
        "drain", "chat/a#0", actor_key_id="master", detail={"in_flight": 3, "ratio": 1.0}
    )


async def test_an_intact_chain_verifies(store: Store) -> None:
    empty = await store.audit.verify()
    assert (empty.ok, empty.entries, empty.head_seq, empty.head_hash) == (True, 0, 0, GENESIS_HASH)
    await _five(store)
    report = await store.audit.verify()
    assert (report.ok, report.entries, report.head_seq, report.problem) == (True, 5, 5, None)
    entries = sorted(await store.audit.list(), key=lambda e: e.seq)
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    assert report.head_hash == entries[-1].hash


async def test_an_edited_entry_is_found(store: Store, store_url: str) -> None:
    await _five(store)
    await _sql(store_url, "UPDATE audit_log SET actor = 'someone else' WHERE seq = 3")
    report = await store.audit.verify()
    assert (report.ok, report.seq, report.entries) == (False, 3, 2)
    assert report.problem is not None and "entry 3 was edited" in report.problem


async def test_an_edit_with_a_recomputed_hash_breaks_the_next_link(store: Store, store_url: str) -> None:
    await _five(store)
    [row] = [e for e in await store.audit.list() if e.seq == 2]
    forged = {
        "seq": row.seq,
        "at": row.at,
        "actor_key_id": row.actor_key_id,
        "actor": row.actor,
        "action": row.action,
        "target": row.target,
        "detail": dict(row.detail),
        "before": row.before,
        "after": {**row.after, "name": "forged"},
        "prev_hash": row.prev_hash,
    }
    forge = (
        update(audit_log).where(audit_log.c.seq == 2).values(after=forged["after"], hash=entry_hash(forged))
    )
    await _sql(store_url, forge)
    report = await store.audit.verify()
    assert (report.ok, report.seq) == (False, 3)
    assert report.problem is not None and "does not follow" in report.problem


async def test_a_deleted_entry_is_found(store: Store, store_url: str) -> None:
    await _five(store)
    await _sql(store_url, "DELETE FROM audit_log WHERE seq = 2")
    report = await store.audit.verify()
    assert (report.ok, report.seq, report.entries) == (False, 3, 1)
    assert report.problem is not None and "entry 2 is missing" in report.problem


async def test_deleting_the_newest_entries_is_found(store: Store, store_url: str) -> None:
    await _five(store)
    await _sql(store_url, "DELETE FROM audit_log WHERE seq >= 4")
    report = await store.audit.verify()
    assert (report.ok, report.entries) == (False, 3)
    assert report.problem is not None and "entries 4..5 are missing" in report.problem


async def test_reordered_entries_are_found(store: Store, store_url: str) -> None:
    await _five(store)
    await _sql(
        store_url,
        "UPDATE audit_log SET seq = -1 WHERE seq = 2",
        "UPDATE audit_log SET seq = 2 WHERE seq = 3",
        "UPDATE audit_log SET seq = 3 WHERE seq = -1",
    )
    report = await store.audit.verify()
    assert (report.ok, report.seq) == (False, 2)


async def test_concurrent_appends_from_many_stores_form_one_chain(store: Store, store_url: str) -> None:
    stores = [await Store.open(store_url) for _ in range(3)]
    try:

        async def burst(each: Store, index: int) -> None:
            for n in range(10):
                await each.audit.record("touch", f"t{index}-{n}", actor=ACTOR, detail={"n": n})

        await asyncio.gather(*(burst(each, i) for i, each in enumerate(stores)))
    finally:
        for each in stores:
            await each.close()
    report = await store.audit.verify()
    assert (report.ok, report.entries) == (True, 30), report


async def test_entries_written_before_the_chain_are_chained_by_the_migration(fresh_url: str) -> None:
    parsed = parse_database_url(fresh_url)
    db = Database(create_engine(parsed), parsed)

    def upgrade_to(revision: str) -> Any:
        def run(connection: Connection) -> None:
            command.upgrade(alembic_config(connection), revision)

        return run

    try:
        async with db.write() as conn:
            await conn.run_sync(upgrade_to("0005"))
            for index, roles in enumerate(('["admin", "x"]', '["reader"]', "[]")):
                await conn.execute(
                    text(
                        "INSERT INTO api_keys (id, name, key_hash, key_prefix, created_at, roles, metadata) "
                        f"VALUES ('key_{index}', 'k', '{index:064d}', 'sk-il-', '2030-01-01 00:00:00', "
                        f"'{roles}', '{{}}')"
                    )
                )
                await conn.execute(
                    text(
                        "INSERT INTO audit_log (at, actor_key_id, action, target, detail) VALUES "
                        f"('2030-01-0{index + 1} 12:00:00.123456', 'master', 'disable', 'd{index}', "
                        '\'{"via": "ui", "n": 2.0}\')'
                    )
                )
    finally:
        await db.engine.dispose()
    store = await Store.open(fresh_url)
    try:
        report = await store.audit.verify()
        assert (report.ok, report.entries) == (True, 3), report
        await store.audit.record("enable", "d0", actor=ACTOR)
        assert (await store.audit.verify()).entries == 4
        roles = {k.id: k.roles for k in await store.keys.list()}
        assert roles == {"key_0": ("admin",), "key_1": ("developer",), "key_2": ("developer",)}
    finally:
        await store.close()
