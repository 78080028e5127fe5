"""API key verification on the hot path: an in-memory map of key hashes, kept fresh from the store.

The gateway never asks the database per request. Every unrevoked key's hash is held in memory with
the :class:`~interlock.core.context.Principal` it resolves to (owner, role, compiled allow-lists,
expiry; see :mod:`interlock.governance.principals`), so a request costs one dict lookup and one
comparison of its expiry. A background task polls the store's cheap ``keys_revision`` counter and
reloads when another process changed a key, or the org, team, user or membership it hangs from: a
key whose owner was disabled or deleted elsewhere stops working within one poll interval. A key
this process revokes fails at once; a key revoked by another process fails within one poll
interval. An unknown key is looked up once in the store (it may have been
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
from interlock.governance.principals import EMPTY_DIRECTORY, Directory, resolve
from interlock.store import KeyRecord, KeyRepository, StoreUnavailable, TenantRepository, hash_key

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
        self._tenants: TenantRepository | None = None
        self._directory = EMPTY_DIRECTORY
        self._by_hash: dict[str, Principal] = {}
        self._hash_of: dict[str, str] = {}  # key id → hash, to change or drop one key
        self._unknown: dict[str, float] = {}
        self._used: set[str] = set()
        self._revision = -1
        self._tasks: list[asyncio.Task[None]] = []

    def attach(self, repo: KeyRepository, tenants: TenantRepository | None = None) -> None:
        """Connect the store once it is open (``tenants`` resolves keys' owners)."""
        self._repo = repo
        self._tenants = tenants

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
            records = await self._repo.active_hashes(include_expired=True)
            directory = await self._load_directory()
            by_hash: dict[str, Principal] = {}
            for key_hash, record in records.items():
                principal = resolve(record, directory)
                if principal is not None:
                    by_hash[key_hash] = principal
            self._directory = directory
            self._by_hash = by_hash
            self._hash_of = {p.key_id: h for h, p in by_hash.items()}
            self._unknown.clear()
            self._revision = revision

    async def _load_directory(self) -> Directory:
        return EMPTY_DIRECTORY if self._tenants is None else await Directory.load(self._tenants)

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
        principal = resolve(record, self._directory)
        if principal is not None:
            self._by_hash[key_hash] = principal
            self._hash_of[record.id] = key_hash
        self._unknown.pop(key_hash, None)

    def replace(self, record: KeyRecord) -> None:
        """A key this process just changed holds its new role and allow-lists at once."""
        key_hash = self._hash_of.get(record.id)
        if key_hash is not None:
            principal = resolve(record, self._directory)
            if principal is None:
                self.forget(record.id)
            else:
                self._by_hash[key_hash] = principal

    def forget(self, key_id: str) -> None:
        """A key this process just revoked fails at once."""
        key_hash = self._hash_of.pop(key_id, None)
        if key_hash is not None:
            self._by_hash.pop(key_hash, None)

    async def principal_of(self, key_id: str) -> Principal | None:
        """The principal of a working key by its id (the dashboard's sessions use it): from memory,
        else from the store (a key made by another process a moment ago); ``None`` for a revoked,
        expired or unknown key, or one whose owner is disabled or deleted."""
        key_hash = self._hash_of.get(key_id)
        principal = None if key_hash is None else self._by_hash.get(key_hash)
        if principal is None and self._repo is not None:
            record = await self._repo.get(key_id)
            if record is None or not record.usable():
                return None
            principal = resolve(record, await self._load_directory())
        if principal is None or principal.expired(time.time()):
            return None
        return principal

    async def authenticate(self, api_key: str | None) -> Principal:
        """The principal holding ``api_key``; raise ``AuthenticationFailed`` if there is none."""
        if not api_key:
            raise AuthenticationFailed(
                "Missing API key. Send it as 'Authorization: Bearer <key>' (or 'x-api-key: <key>')."
            )
        key_hash = hash_key(api_key)
        if self._master_hash is not None and hmac.compare_digest(key_hash, self._master_hash):
            return MASTER
        principal = self._by_hash.get(key_hash)
        if principal is None:
            principal = await self._lookup(api_key, key_hash)
        if principal.expires_at is not None and principal.expires_at <= time.time():
            when = datetime.fromtimestamp(principal.expires_at, UTC).isoformat(timespec="seconds")
            raise AuthenticationFailed(f"This API key expired at {when}; ask for a new one.")
        if len(self._used) < _USED_MAX:
            self._used.add(principal.key_id)
        return principal

    async def _lookup(self, api_key: str, key_hash: str) -> Principal:
        now = time.monotonic()
        if self._repo is None or self._unknown.get(key_hash, 0.0) > now:
            raise _invalid()
        try:
            record = await self._repo.find_by_plaintext(api_key, include_expired=True)
            # a key made elsewhere a moment ago may hang from an org, team or user made with it
            directory = await self._load_directory() if record is not None else self._directory
        except StoreUnavailable as exc:
            raise ServiceUnavailable("Cannot verify the API key: the key store is unavailable.") from exc
        principal = resolve(record, directory) if record is not None else None
        if principal is None:
            if len(self._unknown) >= _NEGATIVE_MAX:
                self._unknown.clear()
            self._unknown[key_hash] = now + _NEGATIVE_TTL_S
            raise _invalid()
        self._by_hash[key_hash] = principal
        self._hash_of[principal.key_id] = key_hash
        return principal


def _invalid() -> AuthenticationFailed:
    return AuthenticationFailed(
        "Invalid API key: it is unknown or revoked, or its user, team or org is disabled or deleted."
    )
