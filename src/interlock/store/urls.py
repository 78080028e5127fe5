"""Database URLs as users write them, turned into the async driver URLs SQLAlchemy needs.

Users write ``sqlite:///.interlock/interlock.db`` (relative), ``sqlite:////abs/path.db``,
``sqlite:///:memory:`` or ``postgresql://user:pw@host:5432/db`` (``postgres://`` too); the store
always talks through ``sqlite+aiosqlite`` or ``postgresql+asyncpg``.

``sqlite:///:memory:`` is for tests and demos: the database lives in one pooled connection and is
gone when the store closes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

__all__ = ["Backend", "DatabaseURL", "ensure_sqlite_parent", "parse_database_url"]

Backend = Literal["sqlite", "postgresql"]

_SQLITE_SCHEMES = frozenset({"sqlite", "sqlite+pysqlite", "sqlite+aiosqlite"})
_POSTGRES_SCHEMES = frozenset(
    {"postgres", "postgresql", "postgresql+asyncpg", "postgresql+psycopg", "postgresql+psycopg2"}
)
_MEMORY = ":memory:"


@dataclass(frozen=True, slots=True)
class DatabaseURL:
    """A parsed database URL: the async driver URL plus what is safe to show about it."""

    backend: Backend
    driver_url: URL
    display: str
    password: str | None
    sqlite_path: Path | None
    """The database file for SQLite (``None`` for PostgreSQL and for ``:memory:``)."""

    @property
    def in_memory(self) -> bool:
        """Whether this is an SQLite database that lives only as long as its connection."""
        return self.backend == "sqlite" and self.sqlite_path is None


def parse_database_url(raw: str) -> DatabaseURL:
    """Parse ``raw`` into a :class:`DatabaseURL`; raise ``ValueError`` (password masked) if unusable."""
    try:
        url = make_url(raw.strip())
    except ArgumentError:
        # The raw text may hold a password we cannot locate, so it is not echoed back.
        raise ValueError("malformed database URL (expected e.g. sqlite:///path.db)") from None
    display = url.render_as_string(hide_password=True)
    password = url.password if isinstance(url.password, str) and url.password else None
    scheme = url.drivername.lower()
    if scheme in _SQLITE_SCHEMES:
        path = _sqlite_path(url.database)
        driver_url = url.set(drivername="sqlite+aiosqlite", database=str(path) if path else _MEMORY)
        return DatabaseURL("sqlite", driver_url, display, None, path)
    if scheme in _POSTGRES_SCHEMES:
        if not url.database:
            raise ValueError(f"database URL {display} names no database (add /dbname)")
        driver_url = url.set(drivername="postgresql+asyncpg")
        return DatabaseURL("postgresql", driver_url, display, password, None)
    raise ValueError(f"unsupported database URL {display}: use sqlite:///path.db or postgresql://…")


def ensure_sqlite_parent(url: DatabaseURL) -> None:
    """Create the directory an SQLite file lives in, so a first start needs no manual step."""
    if url.sqlite_path is not None:
        url.sqlite_path.parent.mkdir(parents=True, exist_ok=True)


def _sqlite_path(database: str | None) -> Path | None:
    if not database or database == _MEMORY:
        return None
    # Absolute now, so a later chdir in the process cannot point the engine at another file.
    return Path(database).expanduser().absolute()
