"""Applying the Alembic migrations when the store opens, safely when many processes start at once.

The whole upgrade runs in one transaction on the store's own async engine (``run_sync`` hands
Alembic the underlying sync connection), and both backends have transactional DDL, so a failed
upgrade leaves the schema as it was.

Concurrency: on PostgreSQL the transaction first takes an advisory lock, so replicas starting
together queue up; the first upgrades, the rest find the schema at head and do nothing. On SQLite
the transaction starts with ``BEGIN IMMEDIATE``, which takes the database's write lock and makes
other processes wait (busy timeout) in the same way.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from weakref import WeakKeyDictionary

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from interlock.store.engine import Database
from interlock.store.schema import VERSION_TABLE

__all__ = ["MIGRATIONS_DIR", "alembic_config", "current_revision", "head_revision", "upgrade_to_head"]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

# Any fixed 64-bit number works; it only has to be the same in every Interlock process.
_PG_LOCK_KEY = 0x496E_7465_726C_6F63  # "Interloc"

# Alembic keeps ``context`` and ``op`` in module globals, so two upgrades interleaving in one
# process (two stores opened together, even on different databases) corrupt each other. The
# database locks above only order processes; this orders coroutines. One lock per event loop,
# because an asyncio.Lock must not be shared between loops.
_IN_PROCESS_LOCKS: WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = WeakKeyDictionary()


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for the store's migrations, bound to ``connection`` when given."""
    config = Config()
    # configparser interpolates '%', which a checkout path may contain.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest migration shipped with this version of Interlock."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


async def current_revision(db: Database) -> str | None:
    """The migration the database is at, or ``None`` for an empty database."""
    async with db.read() as conn:
        return await conn.run_sync(_current_revision)


async def upgrade_to_head(db: Database) -> None:
    """Bring the schema to :func:`head_revision`; a no-op (one query) when it is there already."""
    head = head_revision()
    if await current_revision(db) == head:
        return
    async with _in_process_lock(), db.write() as conn:
        if db.backend == "postgresql":
            # Transaction-scoped, so it is released at commit or rollback and works behind
            # PgBouncer in transaction mode, where session locks would leak to other clients.
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        await conn.run_sync(_upgrade)


def _in_process_lock() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    lock = _IN_PROCESS_LOCKS.get(loop)
    if lock is None:
        lock = _IN_PROCESS_LOCKS[loop] = asyncio.Lock()
    return lock


def _current_revision(connection: Connection) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    revision: str | None = context.get_current_revision()
    return revision


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")
