"""Operator modes of deployments (enabled, draining, disabled), shared by every gateway process.

An operator disables a deployment through one worker's admin API; every other worker, on this
instance and on others, must stop sending it traffic too. The modes live in a shared store with a
revision number; each process polls the revision (a single cheap read, every ``poll_interval_s``,
0.25 s by default) and reloads the modes when it moved, so a change reaches every process within
one interval. The process that made the change applies it at once.

Stores: Redis (a hash and a revision counter, for many instances), a SQLite file (several workers of
one instance without Redis), or memory (one process). A store that fails is logged once per outage
and retried at the next poll; the last modes known stay in force meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal, Protocol, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from interlock.config.schema import Settings

__all__ = [
    "DeploymentMode",
    "MemoryModeStore",
    "ModeStore",
    "ModeStoreUnavailable",
    "RedisModeStore",
    "SharedModes",
    "SqliteModeStore",
    "mode_store_for",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

DeploymentMode = Literal["enabled", "draining", "disabled"]
_MODES: tuple[DeploymentMode, ...] = ("enabled", "draining", "disabled")


class ModeStoreUnavailable(Exception):
    """The shared store could not be read or written."""


class ModeStore(Protocol):
    async def revision(self) -> int: ...
    async def load(self) -> dict[str, DeploymentMode]:
        """Every deployment whose mode is not ``enabled``."""
        ...

    async def put(self, deployment_id: str, mode: DeploymentMode) -> None: ...
    async def aclose(self) -> None: ...


def _mode(value: str) -> DeploymentMode:
    for mode in _MODES:
        if value == mode:
            return mode
    return "disabled"  # an unknown word written by a newer version: the safe reading


class MemoryModeStore:
    """One process: nothing to share."""

    def __init__(self) -> None:
        self._modes: dict[str, DeploymentMode] = {}
        self._revision = 0

    async def revision(self) -> int:
        return self._revision

    async def load(self) -> dict[str, DeploymentMode]:
        return dict(self._modes)

    async def put(self, deployment_id: str, mode: DeploymentMode) -> None:
        if mode == "enabled":
            self._modes.pop(deployment_id, None)
        else:
            self._modes[deployment_id] = mode
        self._revision += 1

    async def aclose(self) -> None:
        return None


class RedisModeStore:
    """``<prefix>deployments:modes`` (hash id → mode) and ``<prefix>deployments:revision``."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._client = client
        self._modes_key = f"{prefix}deployments:modes"
        self._revision_key = f"{prefix}deployments:revision"

    async def revision(self) -> int:
        try:
            return int(await self._client.get(self._revision_key) or 0)
        except (RedisError, OSError) as exc:
            raise ModeStoreUnavailable(f"Redis: {type(exc).__name__}") from exc

    async def load(self) -> dict[str, DeploymentMode]:
        try:
            raw = await self._client.hgetall(self._modes_key)
        except (RedisError, OSError) as exc:
            raise ModeStoreUnavailable(f"Redis: {type(exc).__name__}") from exc
        return {_text(k): _mode(_text(v)) for k, v in raw.items()}

    async def put(self, deployment_id: str, mode: DeploymentMode) -> None:
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                if mode == "enabled":
                    pipe.hdel(self._modes_key, deployment_id)
                else:
                    pipe.hset(self._modes_key, deployment_id, mode)
                pipe.incr(self._revision_key)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise ModeStoreUnavailable(f"Redis: {type(exc).__name__}") from exc

    async def aclose(self) -> None:
        await self._client.aclose()


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


class SqliteModeStore:
    """A SQLite file shared by the workers of one instance (small, rare writes: run inline)."""

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # one connection, used from the default executor's threads

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, timeout=5, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS deployment_modes (id TEXT PRIMARY KEY, mode TEXT NOT NULL)"
            )
            db.execute("CREATE TABLE IF NOT EXISTS deployment_modes_revision (n INTEGER NOT NULL)")
            db.execute(
                "INSERT INTO deployment_modes_revision (n) SELECT 0"
                " WHERE NOT EXISTS (SELECT 1 FROM deployment_modes_revision)"
            )
            self._db = db
        return self._db

    def _read_revision(self) -> int:
        row = self._conn().execute("SELECT n FROM deployment_modes_revision").fetchone()
        return int(row[0])

    def _read_modes(self) -> dict[str, DeploymentMode]:
        rows = self._conn().execute("SELECT id, mode FROM deployment_modes").fetchall()
        return {str(i): _mode(str(m)) for i, m in rows}

    def _write(self, deployment_id: str, mode: DeploymentMode) -> None:
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            if mode == "enabled":
                db.execute("DELETE FROM deployment_modes WHERE id = ?", (deployment_id,))
            else:
                db.execute(
                    "INSERT OR REPLACE INTO deployment_modes (id, mode) VALUES (?, ?)", (deployment_id, mode)
                )
            db.execute("UPDATE deployment_modes_revision SET n = n + 1")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _locked(self, work: Callable[[], T]) -> T:
        with self._lock:
            return work()

    async def _call(self, work: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(self._locked, work)
        except sqlite3.Error as exc:
            raise ModeStoreUnavailable(f"{self._path}: {exc}") from exc

    async def revision(self) -> int:
        return await self._call(self._read_revision)

    async def load(self) -> dict[str, DeploymentMode]:
        return await self._call(self._read_modes)

    async def put(self, deployment_id: str, mode: DeploymentMode) -> None:
        await self._call(lambda: self._write(deployment_id, mode))

    async def aclose(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class SharedModes:
    """This process's view of the shared modes, kept fresh by a polling task."""

    def __init__(
        self,
        store: ModeStore,
        apply: Callable[[Mapping[str, DeploymentMode]], None],
        *,
        poll_interval_s: float = 0.25,
    ) -> None:
        self._store = store
        self._apply = apply
        self._interval = poll_interval_s
        self._revision = -1
        self._failing = False
        self._task: asyncio.Task[None] | None = None
        self.modes: dict[str, DeploymentMode] = {}

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._poll(), name="interlock-deployment-modes")

    async def refresh(self) -> None:
        """Reload the modes if the shared revision moved (errors are logged once per outage)."""
        try:
            revision = await self._store.revision()
            if revision != self._revision:
                self.modes = await self._store.load()
                self._revision = revision
                self._apply(self.modes)
        except ModeStoreUnavailable as exc:
            if not self._failing:
                log.warning(
                    "deployment modes: the shared store failed (%s); keeping the last modes known", exc
                )
            self._failing = True
            return
        if self._failing:
            log.warning("deployment modes: the shared store answers again")
        self._failing = False

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.refresh()

    async def set(self, deployment_id: str, mode: DeploymentMode) -> None:
        """Apply ``mode`` here at once and share it (raises ``ModeStoreUnavailable`` if sharing failed)."""
        if mode == "enabled":
            self.modes.pop(deployment_id, None)
        else:
            self.modes[deployment_id] = mode
        self._apply(self.modes)
        await self._store.put(deployment_id, mode)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._store.aclose()


def mode_store_for(settings: Settings) -> ModeStore:
    """The store the settings call for: Redis when configured, else a SQLite file next to the
    counters' when several workers share this instance, else memory."""
    if settings.redis is not None:
        client = aioredis.Redis.from_url(
            settings.redis.url.get_secret_value(),
            socket_connect_timeout=settings.redis.connect_timeout_s,
            socket_timeout=max(settings.redis.timeout_s, 1.0),
            decode_responses=True,
        )
        return RedisModeStore(client, settings.redis.prefix)
    if settings.server.workers > 1:
        counters = Path(settings.limits.local_counters_file)
        return SqliteModeStore(counters.with_name("deployment-modes.db"))
    return MemoryModeStore()
