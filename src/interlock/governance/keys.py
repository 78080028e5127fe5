"""API key verification on the hot path: an in-memory map of key hashes, kept fresh from the store.

The gateway never asks the database per request. Every usable key's hash is held in memory; a
background task polls the store's cheap ``keys_revision`` counter and reloads when another process
created or revoked a key. A key this process revokes fails at once; a key revoked by another process
fails within one poll interval. An unknown key is looked up once in the store (it may have been
created elsewhere a moment ago) and remembered as unknown for a short while, so a flood of bad keys
cannot become a flood of queries.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from datetime import UTC, datetime

from interlock.errors import AuthenticationFailed, ServiceUnavailable
from interlock.gateway.context import Principal
from interlock.store import KeyRecord, KeyRepository, StoreUnavailable, hash_key

__all__ = ["KeyCache"]

log = logging.getLogger(__name__)

_NEGATIVE_TTL_S = 2.0
_NEGATIVE_MAX = 10_000


class KeyCache:
    """Answers "who holds this key?" from memory."""

    def __init__(
        self, repo: KeyRepository | None, master_key: str | None, *, refresh_interval_s: float = 1.0
    ) -> None:
        self._repo = repo
        self._master_hash = hash_key(master_key) if master_key else None
        self._interval = refresh_interval_s
        self._by_hash: dict[str, KeyRecord] = {}
        self._unknown: dict[str, float] = {}
        self._revision = -1
        self._task: asyncio.Task[None] | None = None

    def attach(self, repo: KeyRepository) -> None:
        """Connect the store once it is open."""
        self._repo = repo

    async def start(self) -> None:
        """Load every usable key, then keep watching for changes."""
        if self._repo is None:
            return
        await self.refresh()
        self._task = asyncio.create_task(self._watch(), name="interlock-key-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def refresh(self) -> None:
        """Reload all usable keys if the store's revision moved."""
        if self._repo is None:
            return
        revision = await self._repo.revision()
        if revision != self._revision:
            self._by_hash = await self._repo.active_hashes()
            self._unknown.clear()
            self._revision = revision

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.refresh()
            except StoreUnavailable:
                log.warning("key refresh skipped: the store is unavailable")

    def remember(self, record: KeyRecord, key_hash: str) -> None:
        """A key this process just created is usable at once."""
        self._by_hash[key_hash] = record
        self._unknown.pop(key_hash, None)

    def forget(self, key_id: str) -> None:
        """A key this process just revoked fails at once."""
        self._by_hash = {h: r for h, r in self._by_hash.items() if r.id != key_id}

    async def authenticate(self, api_key: str | None) -> Principal:
        """The principal holding ``api_key``; raise ``AuthenticationFailed`` if there is none."""
        if not api_key:
            raise AuthenticationFailed(
                "Missing API key. Send it as 'Authorization: Bearer <key>' (or 'x-api-key: <key>')."
            )
        key_hash = hash_key(api_key)
        if self._master_hash is not None and hmac.compare_digest(key_hash, self._master_hash):
            return _MASTER
        record = self._by_hash.get(key_hash)
        if record is None:
            record = await self._lookup(api_key, key_hash)
        if record.expires_at is not None and record.expires_at <= datetime.now(UTC):
            raise AuthenticationFailed("This API key has expired.")
        return Principal(
            key_id=record.id,
            name=record.name,
            user_id=record.user_id,
            team_id=record.team_id,
            org_id=record.org_id,
            roles=tuple(record.roles),
        )

    async def _lookup(self, api_key: str, key_hash: str) -> KeyRecord:
        now = time.monotonic()
        if self._repo is None or self._unknown.get(key_hash, 0.0) > now:
            raise _invalid()
        try:
            record = await self._repo.find_by_plaintext(api_key)
        except StoreUnavailable as exc:
            raise ServiceUnavailable("Cannot verify the API key: the key store is unavailable.") from exc
        if record is None:
            if len(self._unknown) >= _NEGATIVE_MAX:
                self._unknown.clear()
            self._unknown[key_hash] = now + _NEGATIVE_TTL_S
            raise _invalid()
        self._by_hash[key_hash] = record
        return record


_MASTER = Principal(key_id="master", name="master", is_master=True, roles=("admin",))


def _invalid() -> AuthenticationFailed:
    return AuthenticationFailed("Invalid API key: it is unknown, revoked or expired.")
