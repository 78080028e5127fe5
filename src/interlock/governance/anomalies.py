"""Spend anomalies: a key or team spending far more than it usually does at this time of day.

Every ``interval_s`` the request log is read with grouped queries (the database sums): spend per
key and per team over the last ``window_s``, and over the same window of each of the
``baseline_days`` days before, at the same time of day. A subject whose recent spend is at least
``min_usd`` and more than ``ratio`` times its baseline (the daily average of those windows; a
subject new to the log has a baseline of 0) is anomalous:

- one warning in the log, ``interlock_spend_anomalies_total{scope}``, a POST to the alert webhooks,
  and an entry in the recent events of ``GET /admin/budgets``;
- with ``revoke_keys``, an anomalous key is revoked (audited as done by the gateway itself).

An anomaly is reported once per subject and window: it is not reported again until a window has
passed. Several processes may watch the same log; ``claim`` (a shared set-if-absent: Redis, the
counters' SQLite file, or memory) makes one of them report each anomaly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from interlock.config.governance import AnomaliesSpec
from interlock.store import SpendLine, Store

__all__ = ["Anomaly", "AnomalyMonitor", "find_anomalies"]

log = logging.getLogger("interlock.anomalies")

Scope = Literal["key", "team"]
Claim = Callable[[str, float], Awaitable[bool]]
"""``claim(name, ttl_s)``: True for the one process that claims ``name`` first within ``ttl_s``."""


@dataclass(frozen=True, slots=True)
class Anomaly:
    scope: Scope
    subject: str
    recent_usd: float
    baseline_usd: float
    window_s: float

    def payload(self) -> dict[str, Any]:
        ratio = (
            "new spender" if self.baseline_usd == 0 else f"{self.recent_usd / self.baseline_usd:.1f}x usual"
        )
        summary = (
            f"{self.scope} {self.subject} spent ${self.recent_usd:,.2f} in the last "
            f"{self.window_s / 60:g} min against ${self.baseline_usd:,.2f} usually ({ratio})"
        )
        return {
            "source": "interlock",
            "alert": "spend_anomaly",
            "severity": "warning",
            "scope": self.scope,
            "subject": self.subject,
            "recent_usd": round(self.recent_usd, 6),
            "baseline_usd": round(self.baseline_usd, 6),
            "window_s": self.window_s,
            "summary": summary,
            "text": f"[interlock] {summary}",
            "at": datetime.now(UTC).isoformat(),
        }


async def find_anomalies(store: Store, spec: AnomaliesSpec, now: datetime) -> list[Anomaly]:
    """The keys and teams whose recent spend is anomalous at ``now``."""
    window = timedelta(seconds=spec.window_s)
    found: list[Anomaly] = []
    scopes: tuple[Scope, ...] = ("key", "team")
    for scope in scopes:
        recent = _costs(await store.spend.grouped(scope, now - window, now))
        candidates = {s: c for s, c in recent.items() if c >= spec.min_usd}
        if not candidates:
            continue
        usual: dict[str, float] = dict.fromkeys(candidates, 0.0)
        for day in range(1, spec.baseline_days + 1):
            end = now - timedelta(days=day)
            for subject, cost in _costs(await store.spend.grouped(scope, end - window, end)).items():
                if subject in usual:
                    usual[subject] += cost / spec.baseline_days
        found += [
            Anomaly(scope, subject, cost, usual[subject], spec.window_s)
            for subject, cost in candidates.items()
            if cost > spec.ratio * usual[subject]
        ]
    return found


def _costs(lines: tuple[SpendLine, ...]) -> dict[str, float]:
    return {line.name: line.cost for line in lines if line.name is not None}


class AnomalyMonitor:
    """The background task that looks for anomalies and reports each once."""

    def __init__(
        self,
        store: Callable[[], Store | None],
        spec: AnomaliesSpec,
        claim: Claim,
        report: Callable[[Anomaly], Awaitable[None]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._spec = spec
        self._claim = claim
        self._report = report
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self.checks = 0

    def start(self) -> None:
        if self._spec.enabled and self._task is None:
            self._task = asyncio.create_task(self._run(), name="interlock-spend-anomalies")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._spec.interval_s)
            try:
                await self.check()
            except Exception as exc:  # the next check runs on time whatever this one met
                log.warning("spend anomaly check failed: %s", type(exc).__name__)

    async def check(self) -> list[Anomaly]:
        """Look once; report (and return) the anomalies this process claimed."""
        store = self._store()
        if store is None:
            return []
        self.checks += 1
        now = datetime.fromtimestamp(self._clock(), UTC)
        reported = []
        for anomaly in await find_anomalies(store, self._spec, now):
            if await self._claim(f"anomaly:{anomaly.scope}:{anomaly.subject}", self._spec.window_s):
                await self._report(anomaly)
                reported.append(anomaly)
        return reported
