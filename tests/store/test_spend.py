"""Spend sums on SQLite and PostgreSQL: totals, breakdowns by key, model and team, ranges, scoping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from interlock.store import RequestRecord, SpendLine, Store

T0 = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


def make(request_id: str, minutes: float = 0, **fields: Any) -> RequestRecord:
    values: dict[str, Any] = {"model": "chat", "operation": "chat", "status": 200}
    values.update(fields)
    return RequestRecord(request_id=request_id, created_at=T0 + timedelta(minutes=minutes), **values)


RECORDS = [
    make("r1", 0, key_id="key_a", team_id="t1", prompt_tokens=10, completion_tokens=5, cost=0.5),
    make("r2", 1, key_id="key_a", team_id="t1", model="premium", prompt_tokens=100, cost=2.0),
    make("r3", 2, key_id="key_b", prompt_tokens=7, completion_tokens=3, cached_tokens=2, cost=0.25),
    make("r4", 3, key_id="key_b", status=502, cost=0.0),
    make("r5", 4, key_id=None, model="premium", status=429),
    make("r6", 90, key_id="key_a", cost=100.0),  # outside the ranges below
]


async def test_totals_and_breakdowns(store: Store) -> None:
    await store.requests.insert_many(RECORDS)
    summary = await store.spend.summary(T0, T0 + timedelta(minutes=10))
    assert summary.total == SpendLine(
        None, requests=5, errors=2, prompt_tokens=117, completion_tokens=8, cached_tokens=2, cost=2.75
    )
    assert summary.by_key == (
        SpendLine("key_a", requests=2, prompt_tokens=110, completion_tokens=5, cost=2.5),
        SpendLine(
            "key_b", requests=2, errors=1, prompt_tokens=7, completion_tokens=3, cached_tokens=2, cost=0.25
        ),
        SpendLine(None, requests=1, errors=1),
    )
    assert [(line.name, line.requests, line.cost) for line in summary.by_model] == [
        ("premium", 2, 2.0),
        ("chat", 3, 0.75),
    ]
    assert summary.by_team == (SpendLine("t1", requests=2, prompt_tokens=110, completion_tokens=5, cost=2.5),)
    assert summary.total.tokens == 125


async def test_one_key_sees_only_its_own_spend(store: Store) -> None:
    await store.requests.insert_many(RECORDS)
    summary = await store.spend.summary(T0, T0 + timedelta(minutes=10), key_id="key_b")
    assert summary.total.requests == 2
    assert summary.total.cost == pytest.approx(0.25)
    assert [line.name for line in summary.by_key] == ["key_b"]
    assert [line.name for line in summary.by_model] == ["chat"]
    assert summary.by_team == ()


async def test_range_is_inclusive_exclusive_and_open_ended(store: Store) -> None:
    await store.requests.insert_many(RECORDS)
    inner = await store.spend.summary(T0 + timedelta(minutes=1), T0 + timedelta(minutes=3))
    assert inner.total.requests == 2  # r2 and r3; r4 at minute 3 is excluded
    open_ended = await store.spend.summary(T0 + timedelta(minutes=4))
    assert open_ended.total.requests == 2  # r5 and r6
    assert open_ended.total.cost == pytest.approx(100.0)


async def test_empty_range_is_all_zeros(store: Store) -> None:
    summary = await store.spend.summary(T0)
    assert summary.total == SpendLine(None)
    assert (summary.by_key, summary.by_model, summary.by_team) == ((), (), ())


async def test_limit_caps_groups_but_not_the_total(store: Store) -> None:
    await store.requests.insert_many(RECORDS)
    summary = await store.spend.summary(T0, T0 + timedelta(minutes=10), limit=1)
    assert [line.name for line in summary.by_key] == ["key_a"]
    assert summary.total.requests == 5


async def test_bad_input_is_refused_clearly(store: Store) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.spend.summary(datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.spend.summary(T0, datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="limit"):
        await store.spend.summary(T0, limit=0)


async def test_total_alone_matches_the_summary(store: Store) -> None:
    await store.requests.insert_many(RECORDS)
    end = T0 + timedelta(minutes=10)
    assert await store.spend.total(T0, end) == (await store.spend.summary(T0, end)).total
    assert (await store.spend.total(T0, end, key_id="key_a")).cost == pytest.approx(2.5)
