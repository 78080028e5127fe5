"""Which tracer a gateway runs: the no-op one, or OpenTelemetry's.

:func:`tracer_from_settings` returns the OpenTelemetry-backed tracer of
:mod:`interlock.telemetry.otel` when ``telemetry.otlp_endpoint`` is set (or an exporter is given, as
tests do) and the optional ``otel`` extra is installed; without the extra, tracing stays off with a
warning. The interface and the no-op tracer live in :mod:`interlock.core.tracing`, so that routing
can call them without depending on this package.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from interlock.core.tracing import NO_TRACER, Tracer

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from interlock.config.schema import Settings

__all__ = ["tracer_from_settings"]

log = logging.getLogger("interlock.tracing")


def tracer_from_settings(settings: Settings, exporter: SpanExporter | None = None) -> Tracer:
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
