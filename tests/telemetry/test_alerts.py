"""Alerts: the rules on synthetic numbers with a fake clock, and a real gateway whose alerts reach a
real webhook receiver over loopback HTTP."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from interlock.config.schema import AlertsSpec, WebhookSpec
from interlock.server.thread import free_port
from interlock.sim import SimServerThread
from interlock.telemetry.alerts import AlertMonitor, ModelCounts
from tests.gateway_harness import running_gateway, simple_config
from tests.telemetry.receivers import webhook_receiver


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Traffic:
    """Cumulative counters a test moves forward, plus an SLO window it sets directly."""

    def __init__(self) -> None:
        self.requests = self.errors = self.fallbacks = 0
        self.slo_requests = self.slo_met = 0

    def add(self, ok: int = 0, failed: int = 0, fallbacks: int = 0) -> None:
        self.requests += ok + failed
        self.errors += failed
        self.fallbacks += fallbacks
        self.slo_requests, self.slo_met = ok + failed, ok  # the 5-minute window: just this traffic

    def __call__(self) -> dict[str, ModelCounts]:
        counts = ModelCounts(
            self.requests, self.errors, self.fallbacks, self.slo_requests, self.slo_met, slo_target=0.99
        )
        return {"chat": counts}


def monitor(spec: AlertsSpec, traffic: Traffic, clock: Clock) -> AlertMonitor:
    return AlertMonitor(spec, traffic, CollectorRegistry(), clock)


def fired(alerts: list[Any]) -> list[tuple[str, str]]:
    return [(a.rule, a.status) for a in alerts]


async def test_error_spike_fires_once_per_cooldown_then_resolves(tmp_path: Path) -> None:
    with webhook_receiver() as (url, received):
        spec = AlertsSpec(
            webhooks=[WebhookSpec(url=url)], cooldown_s=600, min_requests=10, slo_burn_rate=None
        )
        traffic, clock = Traffic(), Clock()
        alerts = monitor(spec, traffic, clock)
        assert alerts.evaluate() == []  # baseline
        for minute in range(3):
            clock.now += 60
            traffic.add(ok=10, failed=30, fallbacks=30)
            found = alerts.evaluate()
            await alerts.notify(found)
            if minute == 0:
                assert fired(found) == [("error_rate", "firing"), ("fallback_rate", "firing")]
            else:
                assert found == []  # still firing, inside the cooldown: no repeat
        clock.now += 600
        traffic.add(ok=10, failed=30, fallbacks=30)
        assert fired(alerts.evaluate()) == [("error_rate", "firing"), ("fallback_rate", "firing")]
        clock.now += 301
        traffic.add(ok=100)
        resolved = alerts.evaluate()
        await alerts.notify(resolved)
        await alerts.stop()
    assert fired(resolved) == [("error_rate", "resolved"), ("fallback_rate", "resolved")]
    bodies = received.bodies
    # the two POSTs of one evaluation race each other: compare without their order
    assert sorted((b["alert"], b["status"]) for b in bodies) == [
        ("error_rate", "firing"),
        ("error_rate", "resolved"),
        ("fallback_rate", "firing"),
        ("fallback_rate", "resolved"),
    ]
    first = next(b for b in bodies if b["alert"] == "error_rate" and b["status"] == "firing")
    assert first["model"] == "chat" and first["severity"] == "critical"
    assert first["value"] == 0.75 and first["threshold"] == 0.05 and first["requests"] == 40
    assert first["text"].startswith("[interlock] FIRING error_rate on chat")
    assert received.headers[0]["content-type"] == "application/json"
    assert alerts.sent == 4 and alerts.failed == 0


def test_quiet_models_never_fire() -> None:
    traffic, clock = Traffic(), Clock()
    alerts = monitor(AlertsSpec(min_requests=20), traffic, clock)
    alerts.evaluate()
    clock.now += 30
    traffic.add(ok=1, failed=9, fallbacks=9)  # 90 % errors, but only 10 requests
    assert alerts.evaluate() == []


def test_slo_burn_needs_both_windows() -> None:
    traffic, clock = Traffic(), Clock()
    spec = AlertsSpec(min_requests=10, error_rate=None, fallback_rate=None, slo_burn_rate=14.4)
    alerts = monitor(spec, traffic, clock)
    for _ in range(110):  # 55 healthy minutes
        clock.now += 30
        traffic.add(ok=100)
        assert alerts.evaluate() == []
    clock.now += 30
    traffic.add(failed=100)  # an outage: 100x burn now, but the hour was fine
    assert alerts.evaluate() == []
    for _ in range(40):  # it lasts: the long window catches up (14.4 % of an hour: ~9 minutes)
        clock.now += 30
        traffic.add(failed=100)
        found = alerts.evaluate()
        if found:
            break
    assert fired(found) == [("slo_burn", "firing")]
    assert found[0].value == pytest.approx(100.0)
    assert found[0].details["long_burn"] >= 14.4


async def test_failed_deliveries_are_counted_and_never_raise() -> None:
    with webhook_receiver(status=500) as (url, received):
        dead = f"http://127.0.0.1:{free_port()}/hook"
        spec = AlertsSpec(
            webhooks=[WebhookSpec(url=url), WebhookSpec(url=dead)],
            min_requests=1,
            slo_burn_rate=None,
            timeout_s=2,
        )
        traffic, clock = Traffic(), Clock()
        alerts = monitor(spec, traffic, clock)
        alerts.evaluate()
        clock.now += 30
        traffic.add(failed=5, fallbacks=5)
        await alerts.notify(alerts.evaluate())
        await alerts.stop()
    assert len(received.bodies) == 2  # error_rate and fallback_rate, both answered 500
    assert alerts.failed == 4 and alerts.sent == 0


def test_a_live_gateway_alerts_a_webhook_on_errors_and_slo_burn(sim: SimServerThread, tmp_path: Path) -> None:
    with webhook_receiver() as (url, received):
        extra = f"""telemetry:
  alerts:
    webhooks: [{{url: "{url}", headers: {{x-token: secret-123}}}}]
    interval_s: 0.1
    min_requests: 5
"""
        text = simple_config({"sim-a": sim.base_url}, tmp_path, extra).replace(
            "  chat:\n", "  chat:\n    retry: {max_attempts: 1}\n", 1
        )
        with running_gateway(text) as gw:
            httpx.post(sim.url + "/sim/faults", json={"error_rate": 1.0, "error_status": 500})
            client = httpx.Client(base_url=gw.base_url, headers={"Authorization": f"Bearer {gw.master_key}"})
            for _ in range(8):
                assert (
                    client.post(
                        "/chat/completions",
                        json={"model": "chat", "messages": [{"role": "user", "content": "x"}]},
                    ).status_code
                    >= 500  # 502s, then 503 once the breaker opens
                )
            client.close()
            deadline = time.monotonic() + 10
            while len({b["alert"] for b in received.bodies}) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            metrics = httpx.get(gw.url + "/metrics").text
    kinds = {(b["alert"], b["status"], b["model"]) for b in received.bodies}
    assert ("error_rate", "firing", "chat") in kinds
    assert ("slo_burn", "firing", "chat") in kinds
    assert all(h["x-token"] == "secret-123" for h in received.headers)
    assert 'interlock_alert_notifications_total{alert="error_rate",outcome="sent"}' in metrics
    assert 'interlock_alert_firing{alert="error_rate",model="chat"} 1.0' in metrics
