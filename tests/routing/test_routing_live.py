"""Routing over real loopback HTTP: breakers, Retry-After, the retry budget, fallbacks, labels,
operator disable, overload and hedging."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from interlock.server.thread import free_port
from interlock.sim import SimConfig, SimServerThread
from tests.conftest import FAST_SIM
from tests.gateway_harness import MASTER_KEY, Gateway, running_gateway

MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture
def second() -> Iterator[SimServerThread]:
    with SimServerThread(FAST_SIM) as server:
        yield server


def config(tmp: Path, providers: dict[str, str], models: str) -> str:
    lines = "\n".join(
        f"  {name}: {{kind: openai, base_url: {url}, read_timeout_s: 2}}" for name, url in providers.items()
    )
    return f"""
master_key: {MASTER_KEY}
store: sqlite:///{tmp}/interlock.db
providers:
{lines}
pools:
  gpu: {{labels: {{hardware: gpu, region: eu}}}}
  cpu: {{labels: {{hardware: cpu, region: us}}}}
models:
{models}
"""


def attempts(response: Any) -> list[str]:
    header = response.headers.get("x-interlock-attempts", "")
    return [
        part.split("=")[0] + "=" + part.split("=")[1].split(":")[0] for part in header.split(", ") if part
    ]


def wait_until(condition: Callable[[], bool], what: str, limit_s: float = 10.0) -> None:
    """Poll until ``condition()`` holds; fail, naming ``what``, if it never does."""
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"never saw {what}")
        time.sleep(0.01)


def deployments(gateway: Gateway) -> dict[str, dict[str, Any]]:
    with gateway.admin() as admin:
        return {d["id"]: d for d in admin.get("/admin/deployments").json()["data"]}


def test_breaker_opens_on_a_dead_deployment_and_traffic_avoids_it(
    second: SimServerThread, tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    models = """  chat:
    routing: {strategy: round-robin}
    breaker: {consecutive_failures: 3, open_s: 30}
    deployments:
      - {provider: dead, model: m}
      - {provider: live, model: m}
"""
    with running_gateway(config(tmp_path, {"dead": dead, "live": second.base_url}, models)) as gw:
        client = gw.openai()
        results = [
            client.chat.completions.with_raw_response.create(model="chat", messages=MESSAGES)
            for _ in range(10)
        ]  # type: ignore[arg-type]
        assert all(r.status_code == 200 for r in results)
        status = deployments(gw)
        assert status["chat/dead/m#0"]["state"] == "open"
        assert status["chat/live/m#1"]["state"] == "closed"
        # once open, requests go straight to the live deployment
        assert attempts(results[-1]) == ["chat/live/m#1=ok"]
        # connection refused opens the breaker at once: one attempt, then never again
        assert sum("chat/dead/m#0" in ",".join(attempts(r)) for r in results) == 1


def test_retry_after_is_honoured(sim: SimServerThread, tmp_path: Path) -> None:
    """The retry waits out the upstream's ``Retry-After`` although the policy's own backoff (1 ms)
    would retry at once: the upstream sees nothing more until the test has cleared the fault."""
    models = """  chat:
    retry: {max_attempts: 2, base_delay_ms: 1}
    deployments:
      - {provider: a, model: m}
"""
    with running_gateway(config(tmp_path, {"a": sim.base_url}, models)) as gw:
        sim.set_faults(error_rate=1.0, error_status=429, retry_after_s=2)
        client = gw.openai()
        outcome: list[Any] = []

        def send() -> None:
            try:
                raw = client.chat.completions.with_raw_response.create(model="chat", messages=MESSAGES)  # type: ignore[arg-type]
            except openai.APIStatusError as exc:
                outcome.append(exc)
            else:
                outcome.append(raw)

        request = threading.Thread(target=send)
        request.start()
        wait_until(lambda: sim.stats()["errors_injected"] >= 1, "the first attempt's 429")
        seen_before_clearing = sim.stats()["requests_total"]
        sim.clear_faults()
        request.join(timeout=30)
    assert seen_before_clearing == 1  # the gateway held the retry back while the 429 stood
    [response] = outcome
    assert not isinstance(response, openai.APIStatusError), response.message
    assert response.status_code == 200
    assert attempts(response) == ["chat/a/m#0=rate_limit_exceeded", "chat/a/m#0=ok"]
    stats = sim.stats()
    assert (stats["requests_total"], stats["errors_injected"]) == (2, 1)


def test_retry_budget_stops_retries(sim: SimServerThread, tmp_path: Path) -> None:
    models = """  chat:
    retry: {budget_ratio: 0, budget_min_per_s: 0}
    deployments:
      - {provider: a, model: m}
"""
    with running_gateway(config(tmp_path, {"a": sim.base_url}, models)) as gw:
        httpx.post(sim.url + "/sim/faults", json={"error_rate": 1.0, "error_status": 500})
        with pytest.raises(openai.APIStatusError) as caught:
            gw.openai().chat.completions.create(model="chat", messages=MESSAGES)  # type: ignore[arg-type]
    assert caught.value.status_code == 503
    assert "retry budget" in caught.value.message
    assert len(attempts(caught.value.response)) == 1


def test_fallback_models_in_order(second: SimServerThread, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    models = """  primary:
    fallbacks: [backup]
    retry: {max_attempts: 3, base_delay_ms: 1}
    deployments:
      - {provider: dead, model: m}
  backup:
    deployments:
      - {provider: live, model: m}
"""
    with running_gateway(config(tmp_path, {"dead": dead, "live": second.base_url}, models)) as gw:
        response = gw.openai().chat.completions.with_raw_response.create(model="primary", messages=MESSAGES)  # type: ignore[arg-type]
    assert response.status_code == 200
    assert attempts(response) == ["primary/dead/m#0=upstream_unavailable", "backup/live/m#0=ok"]


def test_context_window_fallback_before_and_after_sending(tmp_path: Path) -> None:
    with (
        SimServerThread(SimConfig(ttft_ms=1, tpot_ms=0.2, context_window=200)) as small,
        SimServerThread(FAST_SIM) as large,
    ):
        models = """  short:
    context_window_fallbacks: [long]
    deployments:
      - {provider: small, model: m}
  estimated:
    context_window: 100
    context_window_fallbacks: [long]
    deployments:
      - {provider: small, model: m}
  long:
    deployments:
      - {provider: large, model: m}
"""
        with running_gateway(
            config(tmp_path, {"small": small.base_url, "large": large.base_url}, models)
        ) as gw:
            client = gw.openai()
            long_prompt = [{"role": "user", "content": "word " * 400}]
            upstream_said = client.chat.completions.with_raw_response.create(
                model="short", messages=long_prompt
            )  # type: ignore[arg-type]
            estimated = client.chat.completions.with_raw_response.create(
                model="estimated", messages=long_prompt
            )  # type: ignore[arg-type]
    assert attempts(upstream_said) == ["short/small/m#0=context_length_exceeded", "long/large/m#0=ok"]
    assert attempts(estimated) == ["long/large/m#0=ok"]  # never sent to the small model


def test_pool_and_label_constraints(sim: SimServerThread, second: SimServerThread, tmp_path: Path) -> None:
    models = """  chat:
    deployments:
      - {provider: a, model: m, pool: gpu}
      - {provider: b, model: m, pool: cpu}
"""
    with running_gateway(config(tmp_path, {"a": sim.base_url, "b": second.base_url}, models)) as gw:
        client = gw.openai()
        for _ in range(5):
            gpu = client.chat.completions.with_raw_response.create(
                model="chat",
                messages=MESSAGES,
                extra_headers={"x-interlock-pool": "gpu"},  # type: ignore[arg-type]
            )
            assert gpu.headers["x-interlock-deployment"] == "chat/a/m#0"
            us = client.chat.completions.with_raw_response.create(
                model="chat",
                messages=MESSAGES,
                extra_headers={"x-interlock-labels": "region=us"},  # type: ignore[arg-type]
            )
            assert us.headers["x-interlock-deployment"] == "chat/b/m#1"
        with pytest.raises(
            openai.BadRequestError, match="No deployment of model 'chat' matches hardware=tpu"
        ):
            client.chat.completions.create(
                model="chat", messages=MESSAGES, extra_headers={"x-interlock-labels": "hardware=tpu"}
            )  # type: ignore[arg-type]
        with pytest.raises(openai.BadRequestError, match="key=value"):
            client.chat.completions.create(
                model="chat", messages=MESSAGES, extra_headers={"x-interlock-labels": "gpu"}
            )  # type: ignore[arg-type]


def test_disabled_deployment_gets_no_traffic(
    sim: SimServerThread, second: SimServerThread, tmp_path: Path
) -> None:
    models = "  chat:\n    deployments:\n      - {provider: a, model: m}\n      - {provider: b, model: m}\n"
    with running_gateway(config(tmp_path, {"a": sim.base_url, "b": second.base_url}, models)) as gw:
        with gw.admin() as admin:
            disabled = admin.post("/admin/deployments/chat/a/m%230/disable").json()
            assert disabled["id"] == "chat/a/m#0" and disabled["disabled"] is True
            assert admin.post("/admin/deployments/nope/disable").status_code == 404
        client = gw.openai()
        served = {
            client.chat.completions.with_raw_response.create(model="chat", messages=MESSAGES).headers[
                "x-interlock-deployment"
            ]
            for _ in range(8)
        }  # type: ignore[arg-type]
        assert served == {"chat/b/m#1"}
        assert deployments(gw)["chat/a/m#0"]["state"] == "disabled"


def test_overload_is_a_fast_429_not_a_timeout(tmp_path: Path) -> None:
    with SimServerThread(SimConfig(ttft_ms=300, tpot_ms=1)) as slow:
        models = """  chat:
    retry: {max_attempts: 1}
    concurrency: {adaptive: false, queue_size: 0}
    deployments:
      - {provider: a, model: m, max_concurrency: 1}
"""
        with running_gateway(config(tmp_path, {"a": slow.base_url}, models)) as gw:
            results: list[int] = []

            def call() -> None:
                r = httpx.post(
                    gw.base_url + "/chat/completions",
                    json={"model": "chat", "messages": MESSAGES},
                    headers={"Authorization": f"Bearer {gw.master_key}"},
                    timeout=10,
                )
                results.append(r.status_code)
                if r.status_code == 429:
                    assert r.headers["retry-after"]

            threads = [threading.Thread(target=call) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    assert sorted(results) == [200, 429, 429, 429]


def test_hedge_races_a_second_deployment_and_cancels_the_loser(
    sim: SimServerThread, second: SimServerThread, tmp_path: Path
) -> None:
    models = """  chat:
    routing: {strategy: round-robin}
    hedge: {enabled: true, min_delay_ms: 50, budget_ratio: 1.0}
    deployments:
      - {provider: a, model: m}
      - {provider: b, model: m}
"""
    with running_gateway(config(tmp_path, {"a": sim.base_url, "b": second.base_url}, models)) as gw:
        client = gw.openai()
        for _ in range(24):  # learn both deployments' first-token times
            list(client.chat.completions.create(model="chat", messages=MESSAGES, stream=True))  # type: ignore[arg-type]
        httpx.post(sim.url + "/sim/faults", json={"latency_ms": 3000})
        hedged = []
        for _ in range(2):  # round robin: one of these starts on the slow deployment
            raw = client.chat.completions.with_raw_response.create(
                model="chat", messages=MESSAGES, stream=True
            )  # type: ignore[arg-type]
            assert "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
            hedged.append(attempts(raw))
        assert ["chat/a/m#0=cancelled", "chat/b/m#1=ok"] in hedged or [
            "chat/b/m#1=ok",
            "chat/a/m#0=cancelled",
        ] in hedged
        deadline = time.monotonic() + 5
        while httpx.get(sim.url + "/sim/stats").json()["cancelled"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert httpx.get(sim.url + "/sim/stats").json()["cancelled"] >= 1


def test_active_health_check_takes_a_dead_provider_out_and_back(
    second: SimServerThread, tmp_path: Path
) -> None:
    port = free_port()
    models = (
        "  chat:\n    deployments:\n      - {provider: flaky, model: m}\n      - {provider: live, model: m}\n"
    )
    text = config(tmp_path, {"flaky": f"http://127.0.0.1:{port}/v1", "live": second.base_url}, models)
    text = text.replace("read_timeout_s: 2}", "read_timeout_s: 2, health_check_interval_s: 0.1}")
    with running_gateway(text) as gw:
        deadline = time.monotonic() + 5
        while deployments(gw)["chat/flaky/m#0"]["state"] != "unhealthy" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert deployments(gw)["chat/flaky/m#0"]["state"] == "unhealthy"
        client = gw.openai()
        served = [
            client.chat.completions.with_raw_response.create(model="chat", messages=MESSAGES)
            for _ in range(6)
        ]  # type: ignore[arg-type]
        assert {attempts(r)[0] for r in served} == {"chat/live/m#1=ok"}  # never even tried
        with SimServerThread(FAST_SIM, port=port):
            deadline = time.monotonic() + 5
            while deployments(gw)["chat/flaky/m#0"]["state"] != "closed" and time.monotonic() < deadline:
                time.sleep(0.05)
            assert deployments(gw)["chat/flaky/m#0"]["state"] == "closed"
