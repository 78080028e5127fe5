"""Budget thresholds reached and spend anomalies: a log line, a metric, the admin API's recent
events, and webhooks.

The budget engine reports each threshold (70 %, 100 %, 120 % by default) of each budget, subject and
period once, across every process (:mod:`interlock.governance.budgets`). Each report becomes:

- one warning in the log (the budget's name, the subject, the period, spend against the limit);
- ``interlock_budget_thresholds_total{budget, threshold}``;
- an entry in the last 200 events, read by ``GET /admin/budgets``;
- a POST to every configured alert webhook (``telemetry.alerts.webhooks``), in the background.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from interlock.governance.anomalies import Anomaly
from interlock.governance.budgets import ThresholdCrossed
from interlock.governance.money import micros_to_usd
from interlock.telemetry.alerts import AlertMonitor

__all__ = ["BudgetAlerts"]

log = logging.getLogger("interlock.budgets")
_RECENT = 200


class BudgetAlerts:
    def __init__(self, registry: CollectorRegistry, monitor: AlertMonitor) -> None:
        self._monitor = monitor
        self._counter = Counter(
            "interlock_budget_thresholds",
            "Budget thresholds reached, by budget and threshold (percent).",
            ["budget", "threshold"],
            registry=registry,
        )
        self._anomalies = Counter(
            "interlock_spend_anomalies",
            "Spend anomalies reported, by scope (key or team).",
            ["scope"],
            registry=registry,
        )
        self.recent: deque[dict[str, Any]] = deque(maxlen=_RECENT)
        self._tasks: set[asyncio.Task[None]] = set()

    def __call__(self, event: ThresholdCrossed) -> None:
        self._counter.labels(event.budget, str(event.threshold)).inc()
        self._publish("budget", _payload(event))

    async def anomaly(self, anomaly: Anomaly) -> None:
        self._anomalies.labels(anomaly.scope).inc()
        self._publish("spend_anomaly", anomaly.payload())

    def _publish(self, rule: str, payload: dict[str, Any]) -> None:
        self.recent.append(payload)
        log.warning("%s", payload["summary"])
        task = asyncio.get_running_loop().create_task(self._monitor.notify_payload(rule, payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _payload(event: ThresholdCrossed) -> dict[str, Any]:
    who = "everyone" if event.scope.kind == "global" else f"{event.scope.kind} {event.subject}"
    spent, limit = micros_to_usd(event.spent), micros_to_usd(event.limit)
    summary = (
        f"budget '{event.budget}' ({who}, {event.period}) reached {event.threshold} %: "
        f"${spent:,.2f} of ${limit:,.2f}"
    )
    return {
        "source": "interlock",
        "alert": "budget_threshold",
        "severity": "critical" if event.threshold >= 100 else "warning",
        "budget": event.budget,
        "scope": event.scope.kind,
        "subject": event.subject,
        "model": event.scope.model,
        "period": event.period,
        "threshold_pct": event.threshold,
        "spent_usd": spent,
        "limit_usd": limit,
        "summary": summary,
        "text": f"[interlock] {summary}",
        "at": datetime.now(UTC).isoformat(),
    }
