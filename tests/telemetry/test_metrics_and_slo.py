"""Prometheus output, SLO reports and the request-log API, from a gateway under real traffic."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from interlock.sim import SimServerThread
from tests.gateway_harness import Gateway, running_gateway, simple_config


def families(gateway: Gateway) -> dict[str, list[tuple[dict[str, str], float]]]:
    text = httpx.get(gateway.url + "/metrics").text
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def value(found: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    return sum(
        v
        for sample_labels, v in found.get(name, [])
        if all(sample_labels.get(k) == x for k, x in labels.items())
    )


def test_metrics_count_requests_tokens_cost_and_state(gateway: Gateway) -> None:
    client = gateway.openai()
    for stream in (False, True, True):
        result = client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "hi"}], stream=stream
        )  # type: ignore[call-overload]
        list(result) if stream else None
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="ghost-model", messages=[{"role": "user", "content": "x"}])
    found = families(gateway)
    assert value(found, "interlock_requests_total", model="chat", status_class="2xx") == 3
    assert value(found, "interlock_requests_total", model="unknown", status_class="4xx") == 1
    assert value(found, "interlock_request_errors_total", model="unknown", kind="model_not_found") == 1
    assert value(found, "interlock_tokens_total", model="chat", type="completion") > 0
    assert value(found, "interlock_cost_usd_total", model="chat") > 0
    assert value(found, "interlock_time_to_first_token_seconds_count", model="chat") == 2
    assert value(found, "interlock_attempts_total", deployment="chat/sim-a/sim-small#0", outcome="ok") == 3
    assert value(found, "interlock_deployment_breaker_state", deployment="chat/sim-a/sim-small#0") == 0
    assert value(found, "interlock_deployment_available", deployment="chat/sim-a/sim-small#0") == 1
    assert (
        "interlock_request_log_dropped_records_total" in found
        or "interlock_request_log_dropped_records" in found
    )
    assert value(found, "interlock_gateway_overhead_seconds_count") == 4


def test_series_stay_bounded_under_a_thousand_callers(gateway: Gateway) -> None:
    body = {"model": "chat", "messages": [{"role": "user", "content": "x"}], "user": "u"}
    with httpx.Client() as http:
        for i in range(1000):
            http.post(
                gateway.base_url + "/chat/completions",
                json={**body, "user": f"user-{i}", "model": f"no-such-model-{i}"},
                headers={"Authorization": f"Bearer {gateway.master_key}"},
            )
    series = sum(len(samples) for samples in families(gateway).values())
    assert series < 200
    assert value(families(gateway), "interlock_requests_total", model="unknown") == 1000


def test_slo_report_counts_goodput(sim: SimServerThread, tmp_path: Path) -> None:
    config = simple_config({"sim-a": sim.base_url}, tmp_path).replace(
        "  chat:\n", "  chat:\n    slo: {ttft_ms: 2000, e2e_ms: 5000, target: 0.9}\n", 1
    )
    with running_gateway(config) as gw:
        client = gw.openai()
        for _ in range(4):
            list(
                client.chat.completions.create(
                    model="chat", messages=[{"role": "user", "content": "s"}], stream=True
                )
            )
        httpx.post(sim.url + "/sim/faults", json={"error_rate": 1.0, "error_status": 400})
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "s"}])
        with gw.admin() as admin:
            report = next(r for r in admin.get("/admin/slo").json()["data"] if r["model"] == "chat")
    assert report["requests"] == 5 and report["met"] == 4 and report["compliance"] == 0.8
    assert report["objectives_ms"] == {"ttft": 2000.0, "tpot": None, "e2e": 5000.0}
    assert report["ttft_ms"]["p50"] > 0 and report["goodput_rps"] > 0


def test_request_log_api_filters(gateway: Gateway) -> None:
    client = gateway.openai()
    client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "a"}])
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "b"}])
    with gateway.admin() as admin:
        deadline = time.monotonic() + 10
        while len(admin.get("/admin/requests").json()["data"]) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        errors = admin.get("/admin/requests", params={"status": "error", "since": "1h"}).json()["data"]
        ok = admin.get("/admin/requests", params={"status": "ok", "model": "chat"}).json()["data"]
        detail = admin.get(f"/admin/requests/{ok[0]['request_id']}").json()
        bad = admin.get("/admin/requests", params={"since": "yesterday"})
    assert [r["model"] for r in errors] == ["nope"] and errors[0]["status"] == 404
    assert len(ok) == 1 and detail["deployment"] == "chat/sim-a/sim-small#0"
    assert bad.status_code == 400 and "since" in bad.json()["error"]["message"]
