"""Spend anomalies read from a real request log (SQLite): found, reported once, claimed by one process."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from interlock.config.governance import AnomaliesSpec
from interlock.governance.anomalies import Anomaly, AnomalyMonitor, find_anomalies
from interlock.governance.claims import MemoryClaims, SqliteClaims
from interlock.store import RequestRecord, Store

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
SPEC = AnomaliesSpec(ratio=1.5, min_usd=1.0, baseline_days=7, window_s=3600)
_IDS = itertools.count()


def spent(at: datetime, cost: float, key: str, team: str | None = None) -> RequestRecord:
    return RequestRecord(f"req-{next(_IDS)}", at, "chat", "chat", 200, key_id=key, team_id=team, cost=cost)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite:///{tmp_path}/log.db")
    records = []
    # the usual: $1 in this hour each day for keys "steady" and "spiky", $2 for their team "t1"
    for day in range(1, 8):
        at = NOW - timedelta(days=day, minutes=30)
        records += [spent(at, 1.0, "steady", "t1"), spent(at, 1.0, "spiky", "t1")]
    recent = NOW - timedelta(minutes=10)
    records += [spent(recent, 1.25, "steady", "t1")]  # 1.25x: normal
    records += [spent(recent, 1.0, "spiky", "t1") for _ in range(4)]  # $4 against $1: anomalous
    records += [spent(recent, 5.0, "newcomer")]  # no history at all
    records += [spent(recent, 0.5, "small")]  # new, but under min_usd
    await opened.requests.insert_many(records)
    try:
        yield opened
    finally:
        await opened.close()


async def test_spend_far_above_the_same_hour_on_earlier_days_is_an_anomaly(store: Store) -> None:
    found = {(a.scope, a.subject): a for a in await find_anomalies(store, SPEC, NOW)}
    assert set(found) == {("key", "spiky"), ("key", "newcomer"), ("team", "t1")}
    spiky = found[("key", "spiky")]
    assert spiky.recent_usd == pytest.approx(4.0) and spiky.baseline_usd == pytest.approx(1.0)
    assert "4.0x usual" in spiky.payload()["summary"]
    assert "new spender" in found[("key", "newcomer")].payload()["summary"]
    team = found[("team", "t1")]  # 5.25 against 2.0
    assert team.recent_usd == pytest.approx(5.25) and team.baseline_usd == pytest.approx(2.0)


async def test_two_watchers_report_each_anomaly_once(store: Store, tmp_path: Path) -> None:
    reports: list[Anomaly] = []

    async def report(anomaly: Anomaly) -> None:
        reports.append(anomaly)

    for claims in (MemoryClaims(), SqliteClaims(tmp_path / "claims.db")):
        reports.clear()
        watchers = [
            AnomalyMonitor(lambda: store, SPEC, claims.claim, report, clock=NOW.timestamp) for _ in range(2)
        ]
        for watcher in watchers:
            await watcher.check()
        await watchers[0].check()  # within the window: not again
        assert sorted((a.scope, a.subject) for a in reports) == [
            ("key", "newcomer"),
            ("key", "spiky"),
            ("team", "t1"),
        ]


async def test_a_sqlite_claim_lapses_after_its_ttl(tmp_path: Path) -> None:
    claims = SqliteClaims(tmp_path / "claims.db")
    assert await claims.claim("x", 0.05) is True
    assert await claims.claim("x", 0.05) is False
    await asyncio.sleep(0.1)
    assert await claims.claim("x", 0.05) is True
