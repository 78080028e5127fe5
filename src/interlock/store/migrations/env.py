"""Alembic environment for the Interlock store.

Normally the store runs migrations itself (``interlock.store.migrate``) and hands this script an
open connection inside a transaction it owns, via ``config.attributes["connection"]``.

Developers may also run Alembic by hand against a URL given as ``-x url=…`` (or ``sqlalchemy.url``
in alembic.ini); the URL is written as users write it and converted like the store converts it.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from interlock.store.engine import create_engine
from interlock.store.schema import VERSION_TABLE, metadata
from interlock.store.urls import parse_database_url


def _run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        # SQLite cannot ALTER most things; batch mode recreates the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _url_from_command_line() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("give the database URL: alembic -x url=sqlite:///path.db …")
    return str(url)


def _run_offline(raw_url: str) -> None:
    url = parse_database_url(raw_url)
    context.configure(
        url=url.driver_url,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online(raw_url: str) -> None:
    engine = create_engine(parse_database_url(raw_url))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run_on)
    finally:
        await engine.dispose()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if isinstance(connection, Connection):
        _run_on(connection)
    elif context.is_offline_mode():
        _run_offline(_url_from_command_line())
    else:
        asyncio.run(_run_online(_url_from_command_line()))


_main()
