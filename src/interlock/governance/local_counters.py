"""Counters kept on this machine: in process memory, or in a SQLite file that several workers share.

``LocalCounters`` runs the rules of ``local_logic`` inside one transaction of its store. The memory
store needs no lock: each operation runs to completion on the event loop without awaiting. The
SQLite store (``sqlite_store``) serialises operations of every process with ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from interlock.governance import local_logic
from interlock.governance.counters import (
    AcquireOutcome,
    BucketLine,
    BudgetLine,
    BudgetUsage,
    LeaseLine,
    ReserveOutcome,
    SettleOutcome,
)
from interlock.governance.local_logic import Record, Table

__all__ = ["LocalCounters", "LocalStore", "MemoryStore"]

T = TypeVar("T")

_PRUNE_EVERY = 4096


class LocalStore(Protocol):
    """Runs a function over the table as one atomic transaction."""

    async def transact(self, work: Callable[[Table], T]) -> T: ...
    async def aclose(self) -> None: ...


class _MemoryTable:
    def __init__(self) -> None:
        self.records: dict[str, tuple[Record, int | None]] = {}
        self._puts = 0

    def get(self, key: str, now_ms: int) -> Record | None:
        if self._puts >= _PRUNE_EVERY:
            self._prune(now_ms)
        found = self.records.get(key)
        if found is None or (found[1] is not None and found[1] <= now_ms):
            return None
        return found[0]

    def put(self, key: str, record: Record, expires_at_ms: int | None) -> None:
        self.records[key] = (record, expires_at_ms)
        self._puts += 1

    def _prune(self, now_ms: int) -> None:
        """Forget expired records now and then, so memory follows live keys only."""
        self._puts = 0
        for key in [k for k, (_, exp) in self.records.items() if exp is not None and exp <= now_ms]:
            del self.records[key]


class MemoryStore:
    """Records in a dict of this process: the embedded default (one process, no Redis)."""

    def __init__(self) -> None:
        self._table = _MemoryTable()

    async def transact(self, work: Callable[[Table], T]) -> T:
        # runs without awaiting: no other task interleaves, so the whole call is atomic
        return work(self._table)

    async def aclose(self) -> None:
        self._table.records.clear()


class LocalCounters:
    """The :class:`~interlock.governance.counters.Counters` operations over a local store."""

    def __init__(self, store: LocalStore) -> None:
        self.store = store

    async def reserve(
        self, lines: Sequence[BudgetLine], reservation_id: str, amount: int, now_ms: int, ttl_ms: int
    ) -> ReserveOutcome:
        return await self.store.transact(
            lambda t: local_logic.reserve(t, lines, reservation_id, amount, now_ms, ttl_ms)
        )

    async def settle(
        self, lines: Sequence[BudgetLine], reservation_id: str, actual: int, now_ms: int
    ) -> SettleOutcome:
        return await self.store.transact(
            lambda t: local_logic.settle(t, lines, reservation_id, actual, now_ms)
        )

    async def release(self, lines: Sequence[BudgetLine], reservation_id: str, now_ms: int) -> None:
        await self.store.transact(lambda t: local_logic.release(t, lines, reservation_id, now_ms))

    async def usage(self, lines: Sequence[BudgetLine], now_ms: int) -> tuple[BudgetUsage, ...]:
        return await self.store.transact(lambda t: local_logic.usage(t, lines, now_ms))

    async def acquire(
        self, buckets: Sequence[BucketLine], leases: Sequence[LeaseLine], lease_id: str, now_ms: int
    ) -> AcquireOutcome:
        return await self.store.transact(lambda t: local_logic.acquire(t, buckets, leases, lease_id, now_ms))

    async def adjust(self, buckets: Sequence[BucketLine], now_ms: int) -> None:
        await self.store.transact(lambda t: local_logic.adjust(t, buckets, now_ms))

    async def release_leases(self, leases: Sequence[LeaseLine], lease_id: str, now_ms: int) -> None:
        await self.store.transact(lambda t: local_logic.release_leases(t, leases, lease_id, now_ms))

    async def aclose(self) -> None:
        await self.store.aclose()
