"""The OpenTelemetry tracer (the optional ``otel`` extra): spans with the GenAI semantic conventions,
exported over OTLP/HTTP by the SDK's batch processor on a background thread.

Spans are recorded with plain fields on the request path and handed to the span processor as the
SDK's finished-span type (``ReadableSpan``) when they end. The SDK's live spans validate and copy
every attribute under a lock — measured here at about 40 µs per span plus 5 µs per attribute, several
times the gateway's whole per-request budget — while building the finished span costs about 13 µs.
Sampling is the SDK's default rule, done the same way: follow the client's sampled flag when it sent
a ``traceparent``, else keep ``sample_ratio`` of new traces by trace id. An unsampled request costs
two random ids and builds nothing; its upstream still receives a ``traceparent``.

The request span is kept in a context variable set when the request enters the chain (the
``trace`` stage), so the attempts — hedged ones run in tasks of their own, which copy the context —
find their parent, and :meth:`OtelTracer.finish_request` ends it in the request's task. Nothing here
does I/O on the request path.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from contextvars import ContextVar
from random import getrandbits
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from interlock import __version__
from interlock.config.schema import ProviderSpec, Settings, revealed_headers
from interlock.core.context import DeploymentInfo, RequestContext, Usage
from interlock.core.errors import GatewayError
from interlock.core.tracing import AttemptSpan, Tracer

__all__ = ["OtelTracer", "traces_url"]

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_PUBLIC_APIS = {"api.openai.com": "openai", "api.anthropic.com": "anthropic"}
_LOW_64 = (1 << 64) - 1
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
_UNSET = Status(StatusCode.UNSET)
_AttributeValue = str | bool | int | float | tuple[str, ...]


class _Span:
    """A sampled span being recorded."""

    __slots__ = ("attributes", "context", "kind", "name", "parent", "start_ns", "status")

    def __init__(
        self,
        name: str,
        kind: SpanKind,
        context: SpanContext,
        parent: SpanContext | None,
        attributes: dict[str, _AttributeValue],
        start_ns: int,
    ) -> None:
        self.name = name
        self.kind = kind
        self.context = context
        self.parent = parent
        self.attributes = attributes
        self.start_ns = start_ns
        self.status = _UNSET

    def fail(self, kind: str, message: str | None) -> None:
        self.attributes["error.type"] = kind
        self.status = Status(StatusCode.ERROR, message[:200] if message else None)


class _RequestTrace:
    """The request span (None when not sampled), and the context its attempts are parented to."""

    __slots__ = ("attempts", "context", "ctx", "span")

    def __init__(self, ctx: RequestContext, context: SpanContext, span: _Span | None) -> None:
        self.ctx = ctx
        self.context = context
        self.span = span
        self.attempts = 0


_CURRENT: ContextVar[_RequestTrace | None] = ContextVar("interlock_request_trace", default=None)


class _OtelAttemptSpan(AttemptSpan):
    __slots__ = ("_span", "_tracer")

    def __init__(self, tracer: OtelTracer, context: SpanContext, span: _Span | None) -> None:
        headers = {
            "traceparent": f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
        }
        if context.trace_state:
            headers["tracestate"] = context.trace_state.to_header()
        super().__init__(headers)
        self._tracer = tracer
        self._span = span

    def answered(self, message: Mapping[str, Any] | None) -> None:
        span = self._span
        if message is None or span is None:
            return
        attributes = span.attributes
        model = message.get("model")
        if isinstance(model, str):
            attributes["gen_ai.response.model"] = model
        response_id = message.get("id")
        if isinstance(response_id, str):
            attributes["gen_ai.response.id"] = response_id
        choices = message.get("choices")
        if isinstance(choices, list):
            reasons = tuple(
                str(c["finish_reason"]) for c in choices if isinstance(c, dict) and c.get("finish_reason")
            )
            if reasons:
                attributes["gen_ai.response.finish_reasons"] = reasons
        _set_usage(attributes, Usage.from_openai(message.get("usage")))

    def end(self, outcome: str, error: GatewayError | None = None, usage: Usage | None = None) -> None:
        span = self._span
        if span is None:
            return
        self._span = None  # ends once
        span.attributes["interlock.attempt.outcome"] = outcome
        _set_usage(span.attributes, usage)
        if error is not None:
            span.fail(error.kind, error.message)
        self._tracer.emit(span)


class OtelTracer(Tracer):
    """Spans per request and per attempt, exported over OTLP/HTTP (or to ``exporter``)."""

    enabled = True

    def __init__(self, settings: Settings, exporter: SpanExporter | None = None) -> None:
        spec = settings.telemetry
        self._resource = Resource.create({"service.name": spec.service_name, "service.version": __version__})
        self._scope = InstrumentationScope("interlock", __version__)
        self._processor: SpanProcessor
        if exporter is None:
            assert spec.otlp_endpoint is not None
            exporter = OTLPSpanExporter(
                endpoint=traces_url(spec.otlp_endpoint),
                headers=revealed_headers(spec.otlp_headers),
                timeout=5,
            )
            self._processor = BatchSpanProcessor(exporter)
        else:  # tests: export as each span ends
            self._processor = SimpleSpanProcessor(exporter)
        self._bound = round(spec.sample_ratio * (_LOW_64 + 1))
        self._providers = {name: _provider_attributes(name, p) for name, p in settings.providers.items()}
        self._deployments: dict[str, tuple[DeploymentInfo, dict[str, _AttributeValue]]] = {}

    def start_request(self, ctx: RequestContext) -> None:
        _CURRENT.set(self._request(ctx))

    def attempt(self, ctx: RequestContext, deployment: DeploymentInfo) -> AttemptSpan:
        current = _CURRENT.get()
        if current is None or current.ctx is not ctx:  # outside a routed request: a trace of its own
            current = self._request(ctx)
        index = current.attempts
        current.attempts += 1
        parent = current.context
        context = self._context(parent)
        if not context.trace_flags.sampled:
            return _OtelAttemptSpan(self, context, None)
        operation = _operation(ctx)
        attributes = dict(self._static(deployment))
        attributes["gen_ai.operation.name"] = operation
        attributes["interlock.request_id"] = ctx.request_id
        attributes["interlock.attempt.index"] = index
        _request_parameters(ctx.body, attributes)
        name = f"{operation} {deployment.upstream_model}"
        span = _Span(name, SpanKind.CLIENT, context, parent, attributes, time.time_ns())
        return _OtelAttemptSpan(self, context, span)

    def finish_request(self, ctx: RequestContext) -> None:
        current = _CURRENT.get()
        if current is not None and current.ctx is ctx:
            _CURRENT.set(None)
        else:  # finished without passing the trace stage
            current = self._request(ctx)
        span = current.span
        if span is None:
            return
        span.attributes.update(_outcome_attributes(ctx))
        if ctx.error is not None:
            span.attributes["error.type"] = ctx.error.kind
            if ctx.status >= 500:  # a 4xx is the caller's mistake, not a failure of the gateway
                span.fail(ctx.error.kind, ctx.error.message)
        self.emit(span)

    def emit(self, span: _Span) -> None:
        """Hand a finished span to the processor (the batch processor only queues it)."""
        self._processor.on_end(
            ReadableSpan(
                name=span.name,
                context=span.context,
                parent=span.parent,
                resource=self._resource,
                attributes=span.attributes,
                kind=span.kind,
                status=span.status,
                start_time=span.start_ns,
                end_time=time.time_ns(),
                instrumentation_scope=self._scope,
            )
        )

    async def aclose(self) -> None:
        # flushing may wait on the collector: off the event loop
        await asyncio.to_thread(self._processor.shutdown)

    def _request(self, ctx: RequestContext) -> _RequestTrace:
        parent = _client_context(ctx)
        context = self._context(parent)
        if not context.trace_flags.sampled:
            return _RequestTrace(ctx, context, None)
        operation = _operation(ctx)
        attributes: dict[str, _AttributeValue] = {
            "gen_ai.operation.name": operation,
            "gen_ai.request.model": ctx.model,
            "interlock.request_id": ctx.request_id,
            "interlock.front": ctx.front,
            "interlock.stream": ctx.stream,
        }
        start = int(ctx.received_wall * 1e9)
        span = _Span(f"{operation} {ctx.model}", SpanKind.SERVER, context, parent, attributes, start)
        return _RequestTrace(ctx, context, span)

    def _context(self, parent: SpanContext | None) -> SpanContext:
        """A new span's identity: in the parent's trace with its sampling decision, or a new trace
        kept with probability ``sample_ratio`` (decided by the trace id, as the SDK does)."""
        span_id = getrandbits(64) or 1
        if parent is not None:
            return SpanContext(parent.trace_id, span_id, False, parent.trace_flags, parent.trace_state)
        trace_id = getrandbits(128) or 1
        flags = _SAMPLED if trace_id & _LOW_64 < self._bound else _NOT_SAMPLED
        return SpanContext(trace_id, span_id, False, flags)

    def _static(self, deployment: DeploymentInfo) -> dict[str, _AttributeValue]:
        """Attributes fixed per deployment, built once (again only after a reload replaced it)."""
        cached = self._deployments.get(deployment.id)
        if cached is not None and cached[0] is deployment:
            return cached[1]
        attributes: dict[str, _AttributeValue] = {
            **self._providers.get(deployment.provider, {"interlock.provider": deployment.provider}),
            "gen_ai.request.model": deployment.upstream_model,
            "interlock.model": deployment.model_name,
            "interlock.deployment.id": deployment.id,
        }
        if deployment.pool is not None:
            attributes["interlock.pool"] = deployment.pool
        self._deployments[deployment.id] = (deployment, attributes)
        return attributes


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL: ``/v1/traces`` is added to an endpoint given without a path."""
    parts = urlsplit(endpoint)
    return endpoint if parts.path not in ("", "/") else endpoint.rstrip("/") + "/v1/traces"


def _operation(ctx: RequestContext) -> str:
    return "embeddings" if ctx.operation == "embeddings" else "chat"


def _client_context(ctx: RequestContext) -> SpanContext | None:
    """The client's span from its W3C ``traceparent`` (and ``tracestate``), when valid."""
    match = _TRACEPARENT.match(ctx.traceparent.strip()) if ctx.traceparent else None
    if match is None:
        return None
    version, trace_hex, span_hex, flags_hex, rest = match.groups()
    trace_id, span_id = int(trace_hex, 16), int(span_hex, 16)
    if version == "ff" or (version == "00" and rest) or not trace_id or not span_id:
        return None
    state = ctx.header("tracestate")
    trace_state = TraceState.from_header([state]) if state else None
    return SpanContext(trace_id, span_id, True, TraceFlags(int(flags_hex, 16)), trace_state)


def _provider_attributes(name: str, spec: ProviderSpec) -> dict[str, _AttributeValue]:
    url = urlsplit(spec.base_url or "")
    host = url.hostname or ""
    system = _PUBLIC_APIS.get(host) or ("azure.ai.openai" if host.endswith(".openai.azure.com") else name)
    attributes: dict[str, _AttributeValue] = {
        "gen_ai.provider.name": system,
        "gen_ai.system": system,
        "server.address": host,
        "interlock.provider": name,
        "interlock.provider.kind": spec.kind,
    }
    port = url.port or (443 if url.scheme == "https" else 80)
    attributes["server.port"] = port
    return attributes


def _request_parameters(body: Mapping[str, Any], attributes: dict[str, _AttributeValue]) -> None:
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(max_tokens, int):
        attributes["gen_ai.request.max_tokens"] = max_tokens
    for key in ("temperature", "top_p"):
        value = body.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attributes[f"gen_ai.request.{key}"] = float(value)


def _set_usage(attributes: dict[str, _AttributeValue], usage: Usage | None) -> None:
    if usage is None:
        return
    attributes["gen_ai.usage.input_tokens"] = usage.prompt_tokens
    attributes["gen_ai.usage.output_tokens"] = usage.completion_tokens
    if usage.cached_tokens:
        attributes["gen_ai.usage.cache_read.input_tokens"] = usage.cached_tokens


def _outcome_attributes(ctx: RequestContext) -> dict[str, _AttributeValue]:
    usage = ctx.usage or Usage()
    attributes: dict[str, _AttributeValue] = {
        "http.response.status_code": ctx.status,
        "interlock.attempts": len(ctx.attempts),
        "interlock.fallback": len(ctx.attempts) > 1,
        "interlock.hedged": ctx.hedged,
        "interlock.cost_usd": ctx.cost(),
        "interlock.overhead_ms": ctx.total_overhead_ms(),
        "gen_ai.usage.input_tokens": usage.prompt_tokens,
        "gen_ai.usage.output_tokens": usage.completion_tokens,
    }
    if ctx.deployment is not None:
        attributes["interlock.deployment.id"] = ctx.deployment.id
    ttft_ms = ctx.ttft_ms()
    if ttft_ms is not None:
        attributes["interlock.ttft_ms"] = ttft_ms
    if ctx.principal is not None:
        attributes["interlock.key_id"] = ctx.principal.key_id
    return attributes
