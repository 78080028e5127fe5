"""The test PostgreSQL server (127.0.0.1:5432, trust auth): a database per test session."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

__all__ = ["PostgresServer", "find_postgres", "run_private"]

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USERS = ("postgres", "root")
PG_MAINTENANCE_DB = "test"


@dataclass(frozen=True, slots=True)
class PostgresServer:
    """The test PostgreSQL server, or why it cannot be used."""

    user: str | None
    session_db: str | None
    skip_reason: str | None

    def url(self, database: str | None = None) -> str:
        """A user-style URL for ``database`` (default: this session's database)."""
        if self.skip_reason is not None:
            pytest.skip(self.skip_reason)
        return f"postgresql://{self.user}@{PG_HOST}:{PG_PORT}/{database or self.session_db}"

    async def admin(self, database: str = PG_MAINTENANCE_DB) -> asyncpg.Connection:
        """A raw asyncpg connection for set-up and clean-up."""
        return await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=self.user, database=database)

    async def create_database(self) -> str:
        """Create an empty database with a unique name and return its name."""
        name = f"interlock_test_{secrets.token_hex(6)}"
        conn = await self.admin()
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return name

    async def drop_database(self, name: str) -> None:
        """Drop a database made by :meth:`create_database`, disconnecting whoever still uses it."""
        conn = await self.admin()
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def find_postgres() -> tuple[str | None, str]:
    errors = []
    for user in PG_USERS:
        try:
            conn = await asyncpg.connect(
                host=PG_HOST, port=PG_PORT, user=user, database=PG_MAINTENANCE_DB, timeout=3
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            errors.append(f"{user}: {type(exc).__name__}: {exc}")
            continue
        await conn.close()
        return user, ""
    return None, "; ".join(errors)


def run_private(coro: Any) -> Any:
    # Session set-up runs outside pytest-asyncio's per-test loops, on a private loop of its own.
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()
