"""Prometheus output, SLO reports and the request-log API, from a gateway under real traffic."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from interlock.sim import SimServerThread
from interlock.telemetry.slo import Objectives, SloTracker
from tests.gateway_harness import Gateway, running_gateway, simple_config, slow_stream

MESSAGES = [{"role": "user", "content": "s"}]


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
    assert value(found, "interlock_requests_total", model="chat", status_class="2xx", outcome="ok") == 3
    assert value(found, "interlock_requests_total", model="unknown", outcome="client_error") == 1
    assert value(found, "interlock_requests_total", model="unknown", status_class="4xx") == 1
    errors = value(found, "interlock_request_errors_total", kind="model_not_found", outcome="client_error")
    assert errors == 1
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
        "  chat:\n",
        "  chat:\n    slo: {ttft_ms: 2000, e2e_ms: 5000, target: 0.9}\n    retry: {max_attempts: 1}\n",
        1,
    )
    with running_gateway(config) as gw:
        client = gw.openai()
        for _ in range(4):
            list(
                client.chat.completions.create(
                    model="chat", messages=[{"role": "user", "content": "s"}], stream=True
                )
            )
        # the caller's mistake (a request the upstream refuses as invalid) is not the model's failure
        httpx.post(sim.url + "/sim/faults", json={"error_rate": 1.0, "error_status": 400})
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="chat", messages=MESSAGES)
        # a backend that fails is
        httpx.post(sim.url + "/sim/faults", json={"error_rate": 1.0, "error_status": 503})
        with pytest.raises(openai.APIStatusError):
            client.chat.completions.create(model="chat", messages=MESSAGES)
        with gw.admin() as admin:
            report = next(r for r in admin.get("/admin/slo").json()["data"] if r["model"] == "chat")
    assert report["requests"] == 5 and report["met"] == 4 and report["compliance"] == 0.8
    assert report["missed"] == 1
    assert report["not_judged"] == {"client_errors": 1, "refused": 0, "cancelled": 0}
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


def records(gateway: Gateway, count: int) -> list[dict[str, Any]]:
    """The newest ``count`` request records, oldest first, once all are written."""
    with gateway.admin() as admin:
        deadline = time.monotonic() + 10
        found: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            found = admin.get("/admin/requests", params={"limit": count}).json()["data"]
            if len(found) >= count:
                break
            time.sleep(0.05)
    return list(reversed(found))


def test_outcome_classes_say_whose_fault_a_failure_was(sim: SimServerThread, tmp_path: Path) -> None:
    config = simple_config({"sim-a": sim.base_url}, tmp_path).replace(
        "  chat:\n", "  chat:\n    retry: {max_attempts: 2, base_delay_ms: 1}\n", 1
    )
    deployment = "chat/sim-a/sim-small#0"
    with running_gateway(config) as gw:
        client = gw.openai()
        client.chat.completions.create(model="chat", messages=MESSAGES)
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="ghost", messages=MESSAGES)
        with pytest.raises(openai.AuthenticationError):
            gw.openai("sk-wrong-key-0000").chat.completions.create(model="chat", messages=MESSAGES)
        httpx.post(sim.url + "/sim/faults", json={"error_rate": 1.0, "error_status": 400})
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="chat", messages=MESSAGES)
        httpx.post(sim.url + "/sim/faults", json={"error_rate": 1.0, "error_status": 500})
        with pytest.raises(openai.APIStatusError):  # both attempts fail upstream: one 503 sums them up
            client.chat.completions.create(model="chat", messages=MESSAGES)
        httpx.post(sim.url + "/sim/faults", json={})
        with gw.admin() as admin:
            admin.post(f"/admin/deployments/{quote(deployment)}/disable").raise_for_status()
            with pytest.raises(openai.APIStatusError):  # nothing to try: the gateway's own 503
                client.chat.completions.create(model="chat", messages=MESSAGES)
            admin.post(f"/admin/deployments/{quote(deployment)}/enable").raise_for_status()
        found = records(gw, 6)
        metrics = families(gw)
    assert [(r["status"], r["outcome"]) for r in found] == [
        (200, "ok"),
        (404, "client_error"),
        (401, "client_error"),
        (400, "client_error"),
        (503, "upstream_error"),
        (503, "gateway_error"),
    ]
    for outcome, count in (("ok", 1), ("client_error", 1), ("upstream_error", 1), ("gateway_error", 1)):
        assert value(metrics, "interlock_requests_total", model="chat", outcome=outcome) == count
    # the unknown model, and the wrong key (refused before the body is read, so of no model)
    assert value(metrics, "interlock_requests_total", model="unknown", outcome="client_error") == 2


def test_a_full_deployment_refuses_and_that_is_a_refusal(sim: SimServerThread, tmp_path: Path) -> None:
    config = (
        simple_config({"sim-a": sim.base_url}, tmp_path)
        .replace(
            "  chat:\n",
            "  chat:\n    retry: {max_attempts: 1}\n    concurrency: {adaptive: false, queue_size: 0}\n",
            1,
        )
        .replace("model: sim-small,", "model: sim-small, max_concurrency: 1,", 1)
    )
    with running_gateway(config) as gw:
        with slow_stream(gw, sim.url) as lines:
            next(lines)  # the one slot is taken until this stream ends
            with pytest.raises(openai.RateLimitError):
                gw.openai().chat.completions.create(model="chat", messages=MESSAGES)
        refused = next(r for r in records(gw, 2) if r["status"] == 429)
        with gw.admin() as admin:
            report = next(r for r in admin.get("/admin/slo").json()["data"] if r["model"] == "chat")
        metrics = families(gw)
    assert refused["outcome"] == "refused"
    # the only deployment was picked though full (there was no other), and refused the request
    ((candidate, verdict, score),) = [c.values() for c in refused["decisions"][0]["candidates"]]
    assert (candidate, verdict) == ("chat/sim-a/sim-small#0", "picked") and score >= 0
    assert report["not_judged"]["refused"] == 1
    assert value(metrics, "interlock_requests_total", model="chat", outcome="refused") == 1


def test_a_streamed_attempt_spans_its_stream_and_its_chunks_count_as_overhead(
    sim: SimServerThread, tmp_path: Path
) -> None:
    with running_gateway(simple_config({"sim-a": sim.base_url}, tmp_path)) as gw:
        with slow_stream(gw, sim.url, max_tokens=30) as lines:
            for _ in lines:
                pass
        (record,) = records(gw, 1)
        metrics = families(gw)
    (attempt,) = record["attempts"]
    assert record["stream"] and attempt["outcome"] == "ok"
    # the attempt started after the request arrived, its first chunk came before the request's
    # first token was counted, and it lasted until the stream ended, long after that
    assert 0 < attempt["start_ms"] < attempt["start_ms"] + attempt["first_token_ms"] <= record["ttft_ms"]
    assert attempt["start_ms"] + attempt["latency_ms"] <= record["latency_ms"]
    assert attempt["latency_ms"] > attempt["first_token_ms"] + (record["latency_ms"] - record["ttft_ms"]) / 2
    # the gateway's own time includes every chunk's trip through the chain, never the waits for them
    assert 0 < record["overhead_ms"] < (record["latency_ms"] - record["ttft_ms"]) / 2
    assert value(metrics, "interlock_gateway_overhead_seconds_sum") == pytest.approx(
        record["overhead_ms"] / 1000.0
    )
    (decision,) = record["decisions"]
    assert decision["pick"] == attempt["deployment"] and decision["attempt"] == 0


def test_a_client_that_leaves_mid_stream_is_a_cancellation(sim: SimServerThread, tmp_path: Path) -> None:
    with running_gateway(simple_config({"sim-a": sim.base_url}, tmp_path)) as gw:
        with slow_stream(gw, sim.url) as lines:
            for line in lines:
                if '"content"' in line:
                    break  # the first token is in; the client leaves while the stream goes on
        (record,) = records(gw, 1)
        with gw.admin() as admin:
            report = next(r for r in admin.get("/admin/slo").json()["data"] if r["model"] == "chat")
    (attempt,) = record["attempts"]
    assert (record["status"], record["outcome"]) == (499, "cancelled")
    # the attempt settled when the client left, before the request was recorded, and says so
    assert attempt["outcome"] == "abandoned" and attempt["latency_ms"] >= attempt["first_token_ms"]
    assert report["requests"] == 0 and report["not_judged"]["cancelled"] == 1


def test_a_long_complete_answer_is_not_a_slow_first_token() -> None:
    objectives = Objectives(ttft_s=0.5, tpot_s=0.05)
    tracker = SloTracker()
    # a complete 400-token answer in 8 s: 20 ms a token, no first token to judge
    tracker.observe("chat", objectives, "ok", None, 8.0 / 401, 8.0)
    # a stream whose first token took 2 s misses the objective
    tracker.observe("chat", objectives, "ok", 2.0, 0.01, 2.5)
    # a complete answer at 200 ms a token misses it too: slow per token is slow
    tracker.observe("chat", objectives, "ok", None, 0.2, 2.0)
    report = tracker.report("chat", objectives)
    assert report["requests"] == 3 and report["missed"] == 2
    assert report["ttft_ms"]["p50"] == 2000.0  # only streams' first tokens in the TTFT figures
