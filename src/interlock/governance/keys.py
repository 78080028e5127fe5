"""API key verification on the hot path: an in-memory map of key hashes, kept fresh from the store.

The gateway never asks the database per request. Every usable key's hash is held in memory; a
background task polls the store's cheap ``keys_revision`` counter and reloads when another process
created or revoked a key. A key this process revokes fails at once; a key revoked by another process
fails within one poll interval. An unknown key is looked up once in the store (it may have been
created elsewhere a moment ago) and remembered as unknown for a short while, so a flood of bad keys
cannot become a flood of queries.

The refresh loop survives every error: a failed poll is logged and the next one runs on time, so a
revocation elsewhere still takes effect once the store answers again.

Keys' ``last_used_at`` is recorded off the hot path: a request only adds its key's id to a set;
every ``touch_interval_s`` the set is written in one ``UPDATE`` (per 500 keys), and whatever a
failed write could not record is kept for the next one.

The master key is known only by its SHA-256 (see ``Settings.master_key_hash``), never as plaintext.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from datetime import UTC, datetime

from interlock.core.context import MASTER, Principal
from interlock.core.errors import AuthenticationFailed, ServiceUnavailable
from interlock.store import KeyRecord, KeyRepository, StoreUnavailable, hash_key

__all__ = ["KeyCache"]

log = logging.getLogger(__name__)

_NEGATIVE_TTL_S = 2.0
_NEGATIVE_MAX = 10_000
_USED_MAX = 100_000  # ids waiting to be written while the store is down; beyond it, new uses are dropped


class KeyCache:
    """Answers "who holds this key?" from memory."""

    def __init__(
        self,
        repo: KeyRepository | None,
        master_key_sha256: str | None,
        *,
        refresh_interval_s: float = 1.0,
        touch_interval_s: float = 15.0,
    ) -> None:
        self._repo = repo
        self._master_hash = master_key_sha256
        self._interval = refresh_interval_s
        self._touch_interval = touch_interval_s
        self._by_hash: dict[str, KeyRecord] = {}
        self._unknown: dict[str, float] = {}
        self._used: set[str] = set()
        self._revision = -1
        self._tasks: list[asyncio.Task[None]] = []

    def attach(self, repo: KeyRepository) -> None:
        """Connect the store once it is open."""
        self._repo = repo

    async def start(self) -> None:
        """Load every usable key, then keep watching for changes."""
        if self._repo is None:
            return
        await self.refresh()
        self._tasks = [
            asyncio.create_task(self._watch(), name="interlock-key-refresh"),
            asyncio.create_task(self._touch_loop(), name="interlock-key-last-used"),
        ]

    async def stop(self) -> None:
        """Stop watching, then write the last batch of key uses."""
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self._flush_quietly()

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
        failures = 0
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.refresh()
            except StoreUnavailable:
                failures += 1
                if failures == 1:
                    log.warning("key refresh skipped: the store is unavailable")
            except Exception:
                # Whatever went wrong, the loop must go on: revocations elsewhere depend on it.
                failures += 1
                if failures == 1:
                    log.exception("key refresh failed; retrying every %.1f s", self._interval)
            else:
                if failures:
                    log.warning("key refresh recovered after %d failed attempts", failures)
                failures = 0

    async def flush_usage(self) -> None:
        """Write the ids of keys used since the last flush as their ``last_used_at`` (now)."""
        if self._repo is None or not self._used:
            return
        used, self._used = self._used, set()
        try:
            await self._repo.touch_last_used(used, at=datetime.now(UTC))
        except BaseException:
            self._keep(used)
            raise

    async def _touch_loop(self) -> None:
        while True:
            await asyncio.sleep(self._touch_interval)
            await self._flush_quietly()

    async def _flush_quietly(self) -> None:
        try:
            await self.flush_usage()
        except StoreUnavailable:
            log.warning("key usage not recorded yet: the store is unavailable")
        except Exception:
            log.exception("recording key usage failed; retrying at the next flush")

    def _keep(self, used: set[str]) -> None:
        room = _USED_MAX - len(self._used)
        self._used.update(used if len(used) <= room else list(used)[:room])

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
            return MASTER
        record = self._by_hash.get(key_hash)
        if record is None:
            record = await self._lookup(api_key, key_hash)
        if record.expires_at is not None and record.expires_at <= datetime.now(UTC):
            raise AuthenticationFailed("This API key has expired.")
        if len(self._used) < _USED_MAX:
            self._used.add(record.id)
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


def _invalid() -> AuthenticationFailed:
    return AuthenticationFailed("Invalid API key: it is unknown, revoked or expired.")
