"""One process out of many does a thing once: ``claim(name, ttl_s)`` is True for the first caller.

Used where every gateway process watches the same data (the request log for spend anomalies) and
exactly one should act on what it finds. The claim lasts ``ttl_s``: Redis ``SET NX PX`` across
instances, a row in a SQLite file shared by the workers of one instance, or a dict in one process.
A store that fails answers True (better a duplicate alert than none).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from interlock.config.schema import Settings

__all__ = ["Claims", "MemoryClaims", "RedisClaims", "SqliteClaims", "claims_for"]

log = logging.getLogger(__name__)


class Claims:
    async def claim(self, name: str, ttl_s: float) -> bool:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


class MemoryClaims(Claims):
    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    async def claim(self, name: str, ttl_s: float) -> bool:
        now = time.monotonic()
        if self._until.get(name, 0.0) > now:
            return False
        if len(self._until) > 10_000:
            self._until = {k: v for k, v in self._until.items() if v > now}
        self._until[name] = now + ttl_s
        return True


class RedisClaims(Claims):
    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix + "claim:"

    async def claim(self, name: str, ttl_s: float) -> bool:
        try:
            return bool(await self._client.set(self._prefix + name, "1", nx=True, px=int(ttl_s * 1000)))
        except (RedisError, OSError) as exc:
            log.warning("claims: Redis failed (%s); acting without a claim", type(exc).__name__)
            return True

    async def aclose(self) -> None:
        await self._client.aclose()


class SqliteClaims(Claims):
    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()

    def _claim(self, name: str, ttl_s: float) -> bool:
        with self._lock:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, timeout=5, isolation_level=None)
            try:
                db.execute("CREATE TABLE IF NOT EXISTS claims (name TEXT PRIMARY KEY, until REAL NOT NULL)")
                now = time.time()
                db.execute("BEGIN IMMEDIATE")
                db.execute("DELETE FROM claims WHERE name = ? AND until <= ?", (name, now))
                taken = db.execute(
                    "INSERT OR IGNORE INTO claims (name, until) VALUES (?, ?)", (name, now + ttl_s)
                ).rowcount
                db.execute("COMMIT")
                return taken == 1
            finally:
                db.close()

    async def claim(self, name: str, ttl_s: float) -> bool:
        try:
            return await asyncio.to_thread(self._claim, name, ttl_s)
        except sqlite3.Error as exc:
            log.warning("claims: %s failed (%s); acting without a claim", self._path, exc)
            return True


def claims_for(settings: Settings) -> Claims:
    """Redis when configured; a SQLite file beside the counters' for several workers; else memory."""
    if settings.redis is not None:
        client = aioredis.Redis.from_url(
            settings.redis.url.get_secret_value(),
            socket_connect_timeout=settings.redis.connect_timeout_s,
            socket_timeout=max(settings.redis.timeout_s, 1.0),
        )
        return RedisClaims(client, settings.redis.prefix)
    if settings.server.workers > 1:
        return SqliteClaims(Path(settings.limits.local_counters_file).with_name("claims.db"))
    return MemoryClaims()
