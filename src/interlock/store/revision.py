"""The ``keys_revision`` counter: bumped by every change that affects how a key resolves.

Gateways poll it (one indexed read) and reload their keys when it moves; see
:class:`interlock.governance.keys.KeyCache`. A change is bumped in the same transaction as the
change itself, so a gateway never sees the new revision without the change.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from interlock.store.schema import KEYS_REVISION, store_meta

__all__ = ["bump_keys_revision", "read_keys_revision"]


async def bump_keys_revision(conn: AsyncConnection) -> None:
    """Add one to the revision, inside the caller's write transaction."""
    await conn.execute(
        update(store_meta).where(store_meta.c.name == KEYS_REVISION).values(value=store_meta.c.value + 1)
    )


async def read_keys_revision(conn: AsyncConnection) -> int:
    """The revision now."""
    query = select(store_meta.c.value).where(store_meta.c.name == KEYS_REVISION)
    value = (await conn.execute(query)).scalar_one_or_none()
    return int(value or 0)
