"""Traces: one span per request and one per upstream attempt, with the GenAI semantic conventions.

The router and the attempt call three hooks, each a one-liner:

- :meth:`Tracer.start_request` when routing begins (the request span, parented to the client's
  ``traceparent`` when it sent one);
- :meth:`Tracer.attempt` for every try at a deployment; the returned :class:`AttemptSpan` carries the
  ``traceparent`` the upstream must receive (``headers``) and is ended exactly once;
- :meth:`Tracer.finish_request` when the request is recorded (for a stream: when it ends).

This module is the no-op tracer: it creates nothing and only forwards the client's own
``traceparent`` (and ``tracestate``) to the upstream unchanged, so tracing off costs a method call per
hook. :meth:`Tracer.from_settings` returns the OpenTelemetry-backed tracer of
:mod:`interlock.telemetry.otel` when ``telemetry.otlp_endpoint`` is set (or an exporter is given, as
tests do) and the optional ``otel`` extra is installed; without the extra, tracing stays off with a
warning.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from interlock.config.schema import Settings
    from interlock.errors import GatewayError
    from interlock.gateway.context import RequestContext, Usage
    from interlock.routing.snapshot import Deployment
    from interlock.store import RequestRecord

__all__ = ["NO_TRACER", "AttemptSpan", "Tracer"]

log = logging.getLogger("interlock.tracing")


class AttemptSpan:
    """One attempt's span. This base records nothing; ``headers`` go to the upstream (or are None)."""

    __slots__ = ("headers",)

    def __init__(self, headers: Mapping[str, str] | None = None) -> None:
        self.headers = headers

    def answered(self, message: Mapping[str, Any] | None) -> None:
        """The upstream answered: a complete body, or a stream's first chunk."""

    def end(self, outcome: str, error: GatewayError | None = None, usage: Usage | None = None) -> None:
        """The attempt is over: ``ok``, an error kind, ``cancelled`` or ``abandoned``."""


_NO_SPAN = AttemptSpan()


class Tracer:
    """Tracing switched off: no spans, the client's trace context forwarded unchanged."""

    enabled = False

    @staticmethod
    def from_settings(settings: Settings, exporter: SpanExporter | None = None) -> Tracer:
        """The tracer ``settings.telemetry`` asks for. ``exporter`` replaces OTLP (tests pass an
        in-memory one); without an exporter or an endpoint, tracing is off."""
        if exporter is None and settings.telemetry.otlp_endpoint is None:
            return NO_TRACER
        try:
            from interlock.telemetry.otel import OtelTracer
        except ImportError:
            log.warning(
                "telemetry.otlp_endpoint is set but OpenTelemetry is not installed "
                "(pip install 'interlock[otel]'); tracing is off"
            )
            return NO_TRACER
        return OtelTracer(settings, exporter)

    def start_request(self, ctx: RequestContext) -> None:
        """Routing of ``ctx`` begins."""

    def attempt(self, ctx: RequestContext, deployment: Deployment) -> AttemptSpan:
        """An attempt at ``deployment`` begins."""
        if ctx.traceparent is None:
            return _NO_SPAN
        state = ctx.header("tracestate")
        headers = {"traceparent": ctx.traceparent}
        if state:
            headers["tracestate"] = state
        return AttemptSpan(headers)

    def finish_request(self, ctx: RequestContext, record: RequestRecord) -> None:
        """``ctx`` is finished and recorded."""

    async def aclose(self) -> None:
        """Flush and stop exporting."""


NO_TRACER = Tracer()
"""The shared no-op tracer."""
