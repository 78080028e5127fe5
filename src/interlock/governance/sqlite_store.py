"""A local store in a SQLite file, so that the workers of one instance count as one gateway.

Used only when the gateway runs several worker processes and no Redis is configured. Each operation
is one ``BEGIN IMMEDIATE`` transaction (the write lock is taken up front, so two workers never both
read a record and then both write it); the file is in WAL mode, so transactions are a few dozen
microseconds and readers never block. The calls run on one thread per process, off the event loop:
a transaction that waits for another worker's lock never stalls requests (benchmarks/
governance_engine.py measures the cost per call).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import orjson

from interlock.governance.counters import CountersUnavailable
from interlock.governance.local_logic import Record, Table

__all__ = ["SqliteStore"]

T = TypeVar("T")

_PRUNE_EVERY = 4096
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS counters ("
    " key TEXT PRIMARY KEY, record BLOB NOT NULL, expires_ms INTEGER) WITHOUT ROWID"
)


class _SqliteTable:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self.latest_ms = 0

    def get(self, key: str, now_ms: int) -> Record | None:
        self.latest_ms = max(self.latest_ms, now_ms)
        row = self._db.execute("SELECT record, expires_ms FROM counters WHERE key = ?", (key,)).fetchone()
        if row is None or (row[1] is not None and row[1] <= now_ms):
            return None
        record: Record = orjson.loads(row[0])
        return record

    def put(self, key: str, record: Record, expires_at_ms: int | None) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO counters (key, record, expires_ms) VALUES (?, ?, ?)",
            (key, orjson.dumps(record), expires_at_ms),
        )


class SqliteStore:
    """Records in one SQLite file shared by the worker processes of one instance."""

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 5.0) -> None:
        self.path = Path(path)
        self._busy_timeout_s = busy_timeout_s
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="interlock-counters")
        self._db: sqlite3.Connection | None = None
        self._table: _SqliteTable | None = None
        self._since_prune = 0

    def _open(self) -> _SqliteTable:
        if self._table is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=self._busy_timeout_s, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(_SCHEMA)
            self._db, self._table = db, _SqliteTable(db)
        return self._table

    def _run(self, work: Callable[[Table], T]) -> T:
        table = self._open()
        assert self._db is not None
        self._db.execute("BEGIN IMMEDIATE")
        try:
            result = work(table)
            self._since_prune += 1
            if self._since_prune >= _PRUNE_EVERY:
                self._since_prune = 0
                self._db.execute("DELETE FROM counters WHERE expires_ms <= ?", (table.latest_ms,))
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return result

    async def transact(self, work: Callable[[Table], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self._run, work)
        except sqlite3.Error as exc:
            raise CountersUnavailable(f"the counters file {self.path} failed: {exc}") from exc

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = self._table = None

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=True)
