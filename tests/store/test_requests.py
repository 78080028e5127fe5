"""The request log on SQLite and PostgreSQL: inserts, filters, order, retention."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

import pytest

from interlock.store import RequestRecord, Store

T0 = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


def make(request_id: str, minutes: float = 0, **fields: Any) -> RequestRecord:
    values: dict[str, Any] = {"model": "gpt-4o", "operation": "chat", "status": 200}
    values.update(fields)
    return RequestRecord(request_id=request_id, created_at=T0 + timedelta(minutes=minutes), **values)


async def test_insert_and_get_round_trip_every_field(store: Store) -> None:
    record = RequestRecord(
        request_id="req-1",
        created_at=T0,
        model="gpt-4o",
        operation="chat",
        status=502,
        stream=True,
        key_id="key_1",
        user_id="u1",
        team_id="t1",
        deployment="openai-east",
        provider="openai",
        upstream_model="gpt-4o-2024-08-06",
        error_kind="upstream_timeout",
        latency_ms=1234.5,
        ttft_ms=98.25,
        overhead_ms=0.75,
        prompt_tokens=100,
        completion_tokens=20,
        cached_tokens=64,
        cost=0.00123,
        attempts=({"deployment": "openai-east", "status": 504}, {"deployment": "openai-west"}),
        extra={"variant": "canary", "tier": "economy", "cache": {"hit": False}},
        client_request_id="caller-trace-42",
    )
    await store.requests.insert_many([record])
    assert await store.requests.get("req-1") == record
    assert await store.requests.get("req-unknown") is None


async def test_defaults_and_read_only_mappings_are_stored(store: Store) -> None:
    record = make("req-1", extra=MappingProxyType({"version": "v2"}))
    await store.requests.insert_many([record])
    stored = await store.requests.get("req-1")
    assert stored is not None
    assert stored.extra == {"version": "v2"}
    assert (stored.stream, stored.ttft_ms, stored.attempts, stored.cost) == (False, None, (), 0.0)
    assert stored.created_at == T0
    assert stored.created_at.utcoffset() == timedelta(0)


async def test_timestamps_in_other_zones_are_stored_as_utc(store: Store) -> None:
    plus_two = T0.astimezone(timezone(timedelta(hours=2)))
    await store.requests.insert_many([replace(make("req-1"), created_at=plus_two)])
    stored = await store.requests.get("req-1")
    assert stored is not None
    assert stored.created_at == T0
    assert stored.created_at.tzinfo == UTC


async def test_duplicate_request_ids_are_skipped_not_failed(store: Store) -> None:
    await store.requests.insert_many([make("req-1", status=200)])
    await store.requests.insert_many([make("req-1", status=500), make("req-2")])
    first = await store.requests.get("req-1")
    assert first is not None
    assert first.status == 200
    assert len(await store.requests.query()) == 2


async def test_a_client_request_id_shared_by_requests_keeps_them_all(store: Store) -> None:
    # the caller's id is a correlation field, not a key: reusing it hides nothing
    await store.requests.insert_many(
        [
            make("ours-1", 0, key_id="key_1", client_request_id="same", cost=0.5),
            make("ours-2", 1, key_id="key_2", client_request_id="same", cost=0.25),
            make("ours-3", 2, key_id="key_1", client_request_id="other"),
        ]
    )
    same = await store.requests.query(client_request_id="same")
    assert [(r.request_id, r.key_id, r.cost) for r in same] == [
        ("ours-2", "key_2", 0.25),
        ("ours-1", "key_1", 0.5),
    ]
    assert [r.request_id for r in await store.requests.query(client_request_id="same", key_id="key_1")] == [
        "ours-1"
    ]
    assert await store.requests.query(client_request_id="nobody") == []


async def test_insert_many_of_nothing_is_a_noop(store: Store) -> None:
    await store.requests.insert_many([])
    assert await store.requests.query() == []


async def test_query_filters_and_newest_first(store: Store) -> None:
    await store.requests.insert_many(
        [
            make("a", 0, model="gpt-4o", status=200, key_id="key_1"),
            make("b", 1, model="claude", status=429, key_id="key_2"),
            make("c", 2, model="gpt-4o", status=502, key_id="key_1"),
            make("d", 3, model="gpt-4o", status=200, key_id="key_2"),
            make("e", 4, model="claude", status=200, key_id=None),
        ]
    )

    async def ids(**filters: Any) -> list[str]:
        return [r.request_id for r in await store.requests.query(**filters)]

    assert await ids() == ["e", "d", "c", "b", "a"]
    assert await ids(model="gpt-4o") == ["d", "c", "a"]
    assert await ids(status=200) == ["e", "d", "a"]
    assert await ids(status_class="error") == ["c", "b"]
    assert await ids(status_class="ok") == ["e", "d", "a"]
    assert await ids(key_id="key_1") == ["c", "a"]
    assert await ids(since=T0 + timedelta(minutes=2)) == ["e", "d", "c"]
    assert await ids(before=T0 + timedelta(minutes=2)) == ["b", "a"]
    assert await ids(limit=2) == ["e", "d"]
    assert await ids(model="gpt-4o", status_class="ok", key_id="key_2") == ["d"]
    assert await ids(model="none") == []


@pytest.mark.parametrize(
    "filters",
    [{"limit": 0}, {"limit": 10_001}, {"status_class": "bad"}, {"since": datetime(2030, 1, 1)}],
)
async def test_bad_query_arguments_are_rejected(store: Store, filters: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        await store.requests.query(**filters)


def test_naive_created_at_is_rejected_when_the_record_is_built() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        RequestRecord("r", datetime(2030, 1, 1), "m", "chat", 200)


async def test_delete_older_than_removes_only_older_rows(store: Store) -> None:
    await store.requests.insert_many([make(f"r{i}", minutes=i) for i in range(5)])
    deleted = await store.requests.delete_older_than(T0 + timedelta(minutes=2))
    assert deleted == 2
    assert [r.request_id for r in await store.requests.query()] == ["r4", "r3", "r2"]
    assert await store.requests.delete_older_than(T0) == 0
    with pytest.raises(ValueError):
        await store.requests.delete_older_than(datetime(2030, 1, 1))
