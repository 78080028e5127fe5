"""Traces over real loopback HTTP, collected by the OpenTelemetry SDK's in-memory exporter: a span per
request and per attempt (retries and fallbacks included), GenAI attributes, the client's
``traceparent`` as parent, and the upstream receiving the attempt's ``traceparent``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from interlock.config.loader import parse_settings
from interlock.core.tracing import NO_TRACER
from interlock.server.app import create_app
from interlock.server.runtime import Runtime
from interlock.server.thread import ServerThread
from interlock.sim import SimServerThread
from interlock.telemetry.otel import traces_url
from interlock.telemetry.tracing import tracer_from_settings
from tests.conftest import FAST_SIM
from tests.gateway_harness import MASTER_KEY
from tests.telemetry.receivers import UPSTREAM_MODEL_VERSION, recording_upstream

CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"
MESSAGES = [{"role": "user", "content": "hello"}]


def config(tmp: Path, upstreams: dict[str, str], models: str, telemetry: str = "") -> str:
    providers = "\n".join(f"  {name}: {{kind: openai, base_url: {url}}}" for name, url in upstreams.items())
    return f"""
master_key: {MASTER_KEY}
store: sqlite:///{tmp}/interlock.db
providers:
{providers}
models:
{models}
{telemetry}
"""


ONE = """  chat:
    deployments:
      - {provider: up, model: upstream-llm}
"""


@contextmanager
def traced_gateway(text: str, exporter: InMemorySpanExporter | None) -> Iterator[str]:
    settings = parse_settings(text, env={})
    tracer = tracer_from_settings(settings, exporter) if exporter is not None else None
    runtime = Runtime.build(settings, tracer=tracer)
    with ServerThread(create_app(settings, runtime)) as server:
        yield server.url


def post(url: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {MASTER_KEY}", **headers}
    return httpx.post(url + "/v1/chat/completions", json=body, headers=headers, timeout=30)


def finished(exporter: InMemorySpanExporter, count: int) -> list[ReadableSpan]:
    """The spans, once ``count`` have ended (a stream's spans end as its last chunk leaves)."""
    deadline = time.monotonic() + 10
    while len(exporter.get_finished_spans()) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return list(exporter.get_finished_spans())


def split(spans: list[ReadableSpan]) -> tuple[ReadableSpan, list[ReadableSpan]]:
    (request,) = [s for s in spans if s.kind == SpanKind.SERVER]
    attempts = sorted((s for s in spans if s.kind == SpanKind.CLIENT), key=lambda s: s.start_time or 0)
    return request, attempts


def traceparent_of(span: ReadableSpan) -> str:
    ctx = span.get_span_context()
    assert ctx is not None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"


def test_one_attempt_span_with_genai_attributes_under_the_clients_trace(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    with (
        recording_upstream() as (url, upstream),
        traced_gateway(config(tmp_path, {"up": url}, ONE), exporter) as gw,
    ):
        body = {"model": "chat", "messages": MESSAGES, "max_tokens": 20, "temperature": 0.5}
        response = post(gw, body, traceparent=TRACEPARENT, tracestate="vendor=abc")
        assert response.status_code == 200
        request, (attempt,) = split(finished(exporter, 2))

    assert request.context is not None and attempt.context is not None
    assert f"{request.context.trace_id:032x}" == CLIENT_TRACE
    assert request.parent is not None and f"{request.parent.span_id:016x}" == CLIENT_SPAN
    assert attempt.parent is not None and attempt.parent.span_id == request.context.span_id
    assert attempt.name == "chat upstream-llm"
    a = dict(attempt.attributes or {})
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == a["gen_ai.system"] == "up"
    assert a["gen_ai.request.model"] == "upstream-llm"
    assert a["gen_ai.response.model"] == UPSTREAM_MODEL_VERSION
    assert a["gen_ai.response.id"] == "chatcmpl-rec"
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["gen_ai.usage.input_tokens"] == 7 and a["gen_ai.usage.output_tokens"] == 3
    assert a["gen_ai.request.max_tokens"] == 20 and a["gen_ai.request.temperature"] == 0.5
    assert a["server.address"] == "127.0.0.1" and isinstance(a["server.port"], int)
    assert a["interlock.deployment.id"] == "chat/up/upstream-llm#0"
    assert a["interlock.attempt.outcome"] == "ok" and a["interlock.attempt.index"] == 0
    assert a["interlock.request_id"] == response.headers["x-request-id"]
    assert "error.type" not in a and attempt.status.status_code == StatusCode.UNSET
    r = dict(request.attributes or {})
    assert request.name == "chat chat"
    assert r["http.response.status_code"] == 200 and r["gen_ai.request.model"] == "chat"
    assert r["interlock.attempts"] == 1 and r["interlock.fallback"] is False
    assert r["gen_ai.usage.output_tokens"] == 3 and r["interlock.deployment.id"] == "chat/up/upstream-llm#0"
    # the upstream was told about the attempt's span, in the client's trace, with the client's state
    (sent,) = upstream.headers
    assert sent["traceparent"] == traceparent_of(attempt)
    assert sent["tracestate"] == "vendor=abc"


def test_retries_and_fallbacks_make_one_span_per_attempt(tmp_path: Path) -> None:
    models = """  chat:
    fallbacks: [backup]
    deployments:
      - {provider: flaky, model: small}
  backup:
    deployments:
      - {provider: steady, model: large}
"""
    exporter = InMemorySpanExporter()
    with recording_upstream() as (flaky_url, flaky), recording_upstream() as (steady_url, steady):
        flaky.statuses = [500, 503]
        text = config(tmp_path, {"flaky": flaky_url, "steady": steady_url}, models)
        with traced_gateway(text, exporter) as gw:
            response = post(gw, {"model": "chat", "messages": MESSAGES})
            assert response.status_code == 200
            request, attempts = split(finished(exporter, 3))
    assert [s.name for s in attempts] == ["chat small", "chat large"]
    first, second = attempts
    assert dict(first.attributes or {})["error.type"] == "upstream_error"
    assert dict(first.attributes or {})["interlock.attempt.outcome"] == "upstream_error"
    assert first.status.status_code == StatusCode.ERROR
    assert dict(second.attributes or {})["interlock.attempt.outcome"] == "ok"
    assert dict(second.attributes or {})["interlock.attempt.index"] == 1
    assert request.context is not None
    assert all(s.parent is not None and s.parent.span_id == request.context.span_id for s in attempts)
    assert dict(request.attributes or {})["interlock.fallback"] is True
    # each upstream saw its own attempt's span id, in one new trace
    assert flaky.headers[0]["traceparent"] == traceparent_of(first)
    assert steady.headers[0]["traceparent"] == traceparent_of(second)


def test_a_retry_on_the_same_deployment_is_its_own_span(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    models = ONE.replace("  chat:\n", "  chat:\n    retry: {base_delay_ms: 1, max_delay_ms: 2}\n")
    with recording_upstream() as (url, upstream):
        upstream.statuses = [502]
        with traced_gateway(config(tmp_path, {"up": url}, models), exporter) as gw:
            assert post(gw, {"model": "chat", "messages": MESSAGES}).status_code == 200
            _, attempts = split(finished(exporter, 3))
    assert [dict(s.attributes or {})["interlock.attempt.outcome"] for s in attempts] == [
        "upstream_error",
        "ok",
    ]
    assert [h["traceparent"] for h in upstream.headers] == [traceparent_of(s) for s in attempts]


def test_stream_span_ends_with_the_stream_and_carries_its_usage(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    with recording_upstream() as (url, _), traced_gateway(config(tmp_path, {"up": url}, ONE), exporter) as gw:
        body = {"model": "chat", "messages": MESSAGES, "stream": True}
        with httpx.stream(
            "POST", gw + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {MASTER_KEY}"}
        ) as response:
            assert response.status_code == 200
            text = "".join(response.iter_text())
        assert "[DONE]" in text
        request, (attempt,) = split(finished(exporter, 2))
    a = dict(attempt.attributes or {})
    assert a["gen_ai.response.model"] == UPSTREAM_MODEL_VERSION
    assert a["gen_ai.usage.input_tokens"] == 5 and a["gen_ai.usage.output_tokens"] == 2
    assert a["interlock.attempt.outcome"] == "ok"
    r = dict(request.attributes or {})
    assert r["interlock.stream"] is True and "interlock.ttft_ms" in r
    assert (attempt.end_time or 0) <= (request.end_time or 0)


def test_requests_that_never_reach_an_upstream_still_get_a_request_span(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    with recording_upstream() as (url, _), traced_gateway(config(tmp_path, {"up": url}, ONE), exporter) as gw:
        bad_key = httpx.post(
            gw + "/v1/chat/completions",
            json={"model": "chat", "messages": MESSAGES},
            headers={"Authorization": "Bearer sk-nope", "traceparent": TRACEPARENT},
        )
        missing = post(gw, {"model": "ghost", "messages": MESSAGES})
        spans = finished(exporter, 2)
    assert bad_key.status_code == 401 and missing.status_code == 404
    assert all(s.kind == SpanKind.SERVER for s in spans)
    by_status = {dict(s.attributes or {})["http.response.status_code"]: s for s in spans}
    assert dict(by_status[401].attributes or {})["error.type"] == "invalid_api_key"
    assert by_status[401].context is not None and f"{by_status[401].context.trace_id:032x}" == CLIENT_TRACE
    assert dict(by_status[404].attributes or {})["error.type"] == "model_not_found"
    assert by_status[404].status.status_code == StatusCode.UNSET  # a 4xx is the caller's, not ours


def test_unsampled_traces_record_nothing_but_still_propagate(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    telemetry = "telemetry: {sample_ratio: 0.0}"
    with recording_upstream() as (url, upstream):
        with traced_gateway(config(tmp_path, {"up": url}, ONE, telemetry), exporter) as gw:
            assert post(gw, {"model": "chat", "messages": MESSAGES}).status_code == 200
        (sent,) = upstream.headers
    assert exporter.get_finished_spans() == ()
    version, trace_id, span_id, flags = sent["traceparent"].split("-")
    assert version == "00" and len(trace_id) == 32 and len(span_id) == 16
    assert int(flags, 16) & 1 == 0  # not sampled (bit 2, "random trace id", may be set)


def test_tracing_off_forwards_the_clients_traceparent_unchanged(tmp_path: Path) -> None:
    with (
        recording_upstream() as (url, upstream),
        traced_gateway(config(tmp_path, {"up": url}, ONE), None) as gw,
    ):
        assert post(gw, {"model": "chat", "messages": MESSAGES}, traceparent=TRACEPARENT).status_code == 200
        assert post(gw, {"model": "chat", "messages": MESSAGES}).status_code == 200
    assert upstream.headers[0]["traceparent"] == TRACEPARENT
    assert "traceparent" not in upstream.headers[1]


def test_tracer_from_settings() -> None:
    assert tracer_from_settings(parse_settings("{}", env={})) is NO_TRACER
    assert not NO_TRACER.enabled
    on = tracer_from_settings(parse_settings("telemetry: {otlp_endpoint: 'http://127.0.0.1:1'}", env={}))
    assert on.enabled
    assert traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert traces_url("http://collector:4318/") == "http://collector:4318/v1/traces"
    assert traces_url("https://otel.example/custom/path") == "https://otel.example/custom/path"


@pytest.mark.parametrize("value", ["collector:4318", "ftp://x"])
def test_bad_otlp_endpoint_is_a_config_error(value: str) -> None:
    from interlock.config.loader import ConfigError

    with pytest.raises(ConfigError, match="otlp_endpoint"):
        parse_settings(f"telemetry: {{otlp_endpoint: '{value}'}}", env={})


def test_hedged_attempts_run_in_their_own_tasks_and_share_the_request_span(tmp_path: Path) -> None:
    models = """  chat:
    routing: {strategy: round-robin}
    hedge: {enabled: true, min_delay_ms: 50, budget_ratio: 1.0}
    deployments:
      - {provider: a, model: m}
      - {provider: b, model: m}
"""
    exporter = InMemorySpanExporter()
    with SimServerThread(FAST_SIM) as a, SimServerThread(FAST_SIM) as b:
        text = config(tmp_path, {"a": a.base_url, "b": b.base_url}, models)
        with traced_gateway(text, exporter) as gw:
            for _ in range(24):  # learn both deployments' first-token times
                assert post(gw, {"model": "chat", "messages": MESSAGES}).status_code == 200
            httpx.post(a.url + "/sim/faults", json={"latency_ms": 3000})
            exporter.clear()
            for _ in range(2):  # round robin: one of these starts on the slow deployment
                assert post(gw, {"model": "chat", "messages": MESSAGES}).status_code == 200
            spans = finished(exporter, 5)
    requests = [s for s in spans if s.kind == SpanKind.SERVER]
    hedged = [r for r in requests if dict(r.attributes or {})["interlock.hedged"]]
    assert hedged
    for request in hedged:
        assert request.context is not None
        children = [s for s in spans if s.parent is not None and s.parent.span_id == request.context.span_id]
        outcomes = sorted(dict(s.attributes or {})["interlock.attempt.outcome"] for s in children)
        assert outcomes == ["cancelled", "ok"]
