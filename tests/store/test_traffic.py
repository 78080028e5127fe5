"""Traffic over time on SQLite and PostgreSQL: buckets, error counts, spend, latency percentiles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from interlock.store import RequestRecord, Store
from interlock.store.traffic import LATENCY_BOUNDS_MS, quantile

T0 = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


def make(request_id: str, seconds: float, **fields: Any) -> RequestRecord:
    values: dict[str, Any] = {"model": "chat", "operation": "chat", "status": 200, "latency_ms": 100.0}
    values.update(fields)
    return RequestRecord(request_id=request_id, created_at=T0 + timedelta(seconds=seconds), **values)


async def test_buckets_are_contiguous_and_count_what_happened(store: Store) -> None:
    await store.requests.insert_many(
        [
            make("a", 1, ttft_ms=50.0, cost=0.1, prompt_tokens=10, completion_tokens=5),
            make("b", 9.5, ttft_ms=70.0, cost=0.2),
            make("c", 25, status=503, error_kind="upstream_unavailable"),
            make("d", 31, key_id="key_b", latency_ms=400.0),  # not streamed: latency is the whole answer
        ]
    )
    series = await store.traffic.series(T0, 10, until=T0 + timedelta(seconds=40))
    assert series.since == T0
    assert [b.start for b in series.buckets] == [T0 + timedelta(seconds=s) for s in (0, 10, 20, 30)]
    assert [b.requests for b in series.buckets] == [2, 0, 1, 1]
    assert [b.errors for b in series.buckets] == [0, 0, 1, 0]
    assert series.buckets[0].cost == pytest.approx(0.3)
    assert series.buckets[0].tokens == 15
    assert series.buckets[2].latency_counts == ()  # errors have no latency sample
    assert series.buckets[3].latency_ms(0.5) == pytest.approx(400.0, rel=0.16)
    first = series.buckets[0]
    assert first.latency_ms(0.0 + 1e-9) >= 50.0 * 0.85  # type: ignore[operator]
    assert first.latency_ms(1.0) == pytest.approx(70.0, rel=0.16)

    totals = series.totals()
    assert (totals.requests, totals.errors) == (4, 1)
    assert totals.latency_ms(0.99) == pytest.approx(400.0, rel=0.16)
    assert series.totals(last_s=10).requests == 1


async def test_since_is_aligned_down_and_filters_apply(store: Store) -> None:
    await store.requests.insert_many(
        [
            make("a", 5, key_id="key_a"),
            make("b", 12, key_id="key_b"),
            make("c", 14, key_id="key_b", model="x"),
        ]
    )
    series = await store.traffic.series(T0 + timedelta(seconds=7), 10, until=T0 + timedelta(seconds=20))
    assert series.since == T0
    assert [b.requests for b in series.buckets] == [1, 2]
    mine = await store.traffic.series(T0, 10, until=T0 + timedelta(seconds=20), key_id="key_b")
    assert [b.requests for b in mine.buckets] == [0, 2]
    model = await store.traffic.series(T0, 10, until=T0 + timedelta(seconds=20), model="x")
    assert [b.requests for b in model.buckets] == [0, 1]


async def test_empty_range_has_empty_buckets(store: Store) -> None:
    series = await store.traffic.series(T0, 60, until=T0 + timedelta(minutes=5))
    assert len(series.buckets) == 5
    assert all(b.requests == 0 and b.latency_ms(0.5) is None for b in series.buckets)
    assert series.totals().latency_ms(0.5) is None


async def test_bad_input_is_refused_clearly(store: Store) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.traffic.series(datetime(2030, 1, 1), 10)
    with pytest.raises(ValueError, match="bucket_s"):
        await store.traffic.series(T0, 0)
    with pytest.raises(ValueError, match="wider buckets"):
        await store.traffic.series(T0, 1, until=T0 + timedelta(days=1))


def test_quantile_interpolates_within_a_bucket() -> None:
    counts = [0] * (len(LATENCY_BOUNDS_MS) + 1)
    assert quantile(counts, 0.5) is None
    index = next(i for i, b in enumerate(LATENCY_BOUNDS_MS) if b > 100)
    counts[index] = 10
    lower, upper = LATENCY_BOUNDS_MS[index - 1], LATENCY_BOUNDS_MS[index]
    assert lower <= quantile(counts, 0.5) <= upper  # type: ignore[operator]
    assert quantile(counts, 1.0) == upper
    counts[-1] = 1_000
    assert quantile(counts, 0.99) == LATENCY_BOUNDS_MS[-1]


async def test_breakdown_counts_requests_per_value(store: Store) -> None:
    await store.requests.insert_many(
        [
            make("a", 1, deployment="chat/a#0", key_id="key_a"),
            make("b", 2, deployment="chat/b#1", key_id="key_b"),
            make("c", 12, deployment="chat/a#0", key_id="key_a"),
            make("d", 13, deployment=None, status=401),
        ]
    )
    end = T0 + timedelta(seconds=20)
    by_deployment = await store.traffic.breakdown(T0, 10, by="deployment", until=end)
    assert by_deployment.starts == (T0, T0 + timedelta(seconds=10))
    assert by_deployment.counts == {"chat/a#0": (1, 1), "chat/b#1": (1, 0)}
    mine = await store.traffic.breakdown(T0, 10, by="model", until=end, key_id="key_a")
    assert mine.counts == {"chat": (1, 1)}


async def test_earliest_finds_the_first_request_in_range(store: Store) -> None:
    assert await store.traffic.earliest(T0) is None
    await store.requests.insert_many([make("a", 5, key_id="key_a"), make("b", 12, key_id="key_b")])
    assert await store.traffic.earliest(T0) == T0 + timedelta(seconds=5)
    assert await store.traffic.earliest(T0 + timedelta(seconds=6)) == T0 + timedelta(seconds=12)
    assert await store.traffic.earliest(T0, key_id="key_b") == T0 + timedelta(seconds=12)
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.traffic.earliest(datetime(2030, 1, 1))


async def test_errors_count_only_failures_of_the_gateway_and_its_backends(store: Store) -> None:
    await store.requests.insert_many(
        [
            make("ok", 1),
            make("up", 2, status=504, error_kind="upstream_timeout", outcome="upstream_error"),
            make("gw", 3, status=503, error_kind="service_unavailable", outcome="gateway_error"),
            make("404", 4, status=404, error_kind="model_not_found", outcome="client_error"),
            make("401", 5, status=401, error_kind="invalid_api_key", outcome="client_error"),
            make("429", 6, status=429, error_kind="rate_limit_exceeded", outcome="refused"),
            make("499", 7, status=499, outcome="cancelled"),
        ]
    )
    whole = (await store.traffic.series(T0, 10, until=T0 + timedelta(seconds=10))).totals()
    assert (whole.requests, whole.errors, whole.judged) == (7, 2, 3)
    assert (whole.upstream_errors, whole.gateway_errors) == (1, 1)
    assert (whole.client_errors, whole.refused, whole.cancelled) == (2, 1, 1)
    assert whole.error_rate == pytest.approx(2 / 3)
    assert sum(whole.latency_counts) == 1  # only the answer has a latency sample


async def test_records_without_an_outcome_are_classified_by_status_and_kind(store: Store) -> None:
    await store.requests.insert_many(
        [
            make("a", 1, status=502, error_kind="upstream_bad_response"),
            make("b", 2, status=400, error_kind="upstream_rejected"),  # the upstream refused the caller
            make("c", 3, status=429, error_kind="rate_limit_exceeded"),
            make("d", 4, status=500, error_kind="api_error"),
        ]
    )
    bucket = (await store.traffic.series(T0, 10, until=T0 + timedelta(seconds=10))).buckets[0]
    assert (bucket.upstream_errors, bucket.client_errors, bucket.refused, bucket.gateway_errors) == (
        1,
        1,
        1,
        1,
    )
    assert bucket.error_rate == pytest.approx(1.0)  # two failures, nothing else judged


async def test_outcomes_per_model(store: Store) -> None:
    await store.requests.insert_many(
        [
            make("a", 1, outcome="ok"),
            make("b", 2, status=404, model="ghost", outcome="client_error", key_id="key_a"),
            make("c", 3, status=503, outcome="upstream_error", key_id="key_a"),
            make("d", 30, outcome="ok"),  # outside the range
        ]
    )
    end = T0 + timedelta(seconds=20)
    assert await store.traffic.outcomes(T0, until=end) == {
        "chat": {"ok": 1, "upstream_error": 1},
        "ghost": {"client_error": 1},
    }
    assert await store.traffic.outcomes(T0, until=end, key_id="key_a") == {
        "chat": {"upstream_error": 1},
        "ghost": {"client_error": 1},
    }
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.traffic.outcomes(datetime(2030, 1, 1))
