"""The counting rules in plain Python, over a key–record table: what the Lua scripts do in Redis.

Every function here runs inside one transaction of a local store (``local_counters``), so it may
read and write records freely. Records are JSON-able dicts:

- budget ``{"settled": int, "reserved": int, "res": {id: [amount, expires_ms]}, "fired": [pct…]}``;
- bucket ``{"tat": float}`` (the GCRA theoretical arrival time, epoch ms);
- leases ``{"held": {id: expires_ms}}``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

from interlock.governance.counters import (
    GCRA_EPSILON_MS,
    AcquireOutcome,
    BucketLine,
    BucketState,
    BudgetLine,
    BudgetUsage,
    LeaseLine,
    ReserveOutcome,
    SettleOutcome,
)

__all__ = [
    "CONCURRENCY_RETRY_MS",
    "Table",
    "acquire",
    "adjust",
    "release",
    "release_leases",
    "reserve",
    "settle",
    "usage",
]

CONCURRENCY_RETRY_MS = 1000
"""Retry-after hint when every concurrency slot is taken (a slot frees whenever a request ends)."""

Record = dict[str, Any]


class Table(Protocol):
    """Records by key, each with an optional expiry (an expired record reads as absent)."""

    def get(self, key: str, now_ms: int) -> Record | None: ...
    def put(self, key: str, record: Record, expires_at_ms: int | None) -> None: ...


def _budget(table: Table, line: BudgetLine, now_ms: int) -> Record:
    """The line's record with its expired reservations swept out."""
    record = table.get(line.key, now_ms) or {"settled": 0, "reserved": 0, "res": {}, "fired": []}
    held: dict[str, list[int]] = record["res"]
    for rid in [rid for rid, (_, expires) in held.items() if expires <= now_ms]:
        record["reserved"] -= held.pop(rid)[0]
    return record


def reserve(
    table: Table, lines: Sequence[BudgetLine], reservation_id: str, amount: int, now_ms: int, ttl_ms: int
) -> ReserveOutcome:
    records = [_budget(table, line, now_ms) for line in lines]
    used = tuple(r["settled"] + r["reserved"] for r in records)
    if any(reservation_id in r["res"] for r in records):
        return ReserveOutcome(True, used)
    for index, (line, before) in enumerate(zip(lines, used, strict=True)):
        if line.enforce and before + amount > line.limit:
            return ReserveOutcome(False, used, index)
    for line, record in zip(lines, records, strict=True):
        record["res"][reservation_id] = [amount, now_ms + ttl_ms]
        record["reserved"] += amount
        table.put(line.key, record, line.expires_at_ms)
    return ReserveOutcome(True, used)


def settle(
    table: Table, lines: Sequence[BudgetLine], reservation_id: str, actual: int, now_ms: int
) -> SettleOutcome:
    settled: list[int] = []
    crossed: list[tuple[int, ...]] = []
    for line in lines:
        record = _budget(table, line, now_ms)
        held = record["res"].pop(reservation_id, None)
        if held is not None:
            record["reserved"] -= held[0]
        record["settled"] += actual
        newly = []
        for pct, at in zip(line.thresholds, line.threshold_micros(), strict=True):
            if record["settled"] >= at and pct not in record["fired"]:
                record["fired"].append(pct)
                newly.append(pct)
        table.put(line.key, record, line.expires_at_ms)
        settled.append(record["settled"])
        crossed.append(tuple(newly))
    return SettleOutcome(tuple(settled), tuple(crossed))


def release(table: Table, lines: Sequence[BudgetLine], reservation_id: str, now_ms: int) -> None:
    for line in lines:
        record = _budget(table, line, now_ms)
        held = record["res"].pop(reservation_id, None)
        if held is not None:
            record["reserved"] -= held[0]
            table.put(line.key, record, line.expires_at_ms)


def usage(table: Table, lines: Sequence[BudgetLine], now_ms: int) -> tuple[BudgetUsage, ...]:
    records = [_budget(table, line, now_ms) for line in lines]
    return tuple(BudgetUsage(r["settled"], r["reserved"]) for r in records)


def _gcra(tat: float, line: BucketLine, now_ms: int) -> tuple[bool, float, BucketState, int]:
    """(fits, new tat, state to report, retry after ms) for one bucket step."""
    interval = line.window_ms / line.limit
    base = max(tat, float(now_ms))
    after = base + line.cost * interval
    if after - now_ms > line.window_ms + GCRA_EPSILON_MS:
        wait = math.ceil(after - now_ms - line.window_ms)
        return False, base, _state(base, line, now_ms, interval), wait
    return True, after, _state(after, line, now_ms, interval), 0


def _state(tat: float, line: BucketLine, now_ms: int, interval: float) -> BucketState:
    remaining = math.floor((line.window_ms - (tat - now_ms)) / interval + 1e-9)
    return BucketState(max(0, min(line.limit, remaining)), max(0, math.ceil(tat - now_ms)))


def _leases(table: Table, line: LeaseLine, now_ms: int) -> dict[str, int]:
    record = table.get(line.key, now_ms) or {"held": {}}
    held: dict[str, int] = record["held"]
    return {lid: expires for lid, expires in held.items() if expires > now_ms}


def acquire(
    table: Table, buckets: Sequence[BucketLine], leases: Sequence[LeaseLine], lease_id: str, now_ms: int
) -> AcquireOutcome:
    steps = [_gcra(_tat(table, line, now_ms), line, now_ms) for line in buckets]
    held = [_leases(table, line, now_ms) for line in leases]
    states = tuple(state for _, _, state, _ in steps)
    refused: int | None = None
    wait = 0
    for index, (fits, _, _, retry) in enumerate(steps):
        if not fits and retry > wait:
            refused, wait = index, retry
    for index, (lease_line, slots) in enumerate(zip(leases, held, strict=True)):
        if lease_id not in slots and len(slots) >= lease_line.limit and refused is None:
            refused, wait = len(buckets) + index, CONCURRENCY_RETRY_MS
    if refused is not None:
        return AcquireOutcome(False, states, tuple(len(s) for s in held), refused, wait)
    for bucket, (_, after, _, _) in zip(buckets, steps, strict=True):
        table.put(bucket.key, {"tat": after}, math.ceil(after) + 1000)
    for lease_line, slots in zip(leases, held, strict=True):
        slots[lease_id] = now_ms + lease_line.ttl_ms
        table.put(lease_line.key, {"held": slots}, max(slots.values()))
    return AcquireOutcome(True, states, tuple(len(s) for s in held))


def _tat(table: Table, line: BucketLine, now_ms: int) -> float:
    record = table.get(line.key, now_ms)
    return float(record["tat"]) if record else float(now_ms)


def adjust(table: Table, buckets: Sequence[BucketLine], now_ms: int) -> None:
    for line in buckets:
        interval = line.window_ms / line.limit
        tat = _tat(table, line, now_ms)
        after = max(tat, now_ms) + line.cost * interval if line.cost >= 0 else tat + line.cost * interval
        after = max(after, float(now_ms))
        table.put(line.key, {"tat": after}, math.ceil(after) + 1000)


def release_leases(table: Table, leases: Sequence[LeaseLine], lease_id: str, now_ms: int) -> None:
    for line in leases:
        slots = _leases(table, line, now_ms)
        if slots.pop(lease_id, None) is not None:
            table.put(line.key, {"held": slots}, max(slots.values(), default=now_ms))
