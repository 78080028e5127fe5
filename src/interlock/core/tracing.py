"""The tracer interface the request path calls, and the no-op tracer.

Three hooks, each a one-liner where it is called:

- :meth:`Tracer.start_request` when the request enters the chain (the ``trace`` stage: the request
  span, parented to the client's ``traceparent`` when it sent one);
- :meth:`Tracer.attempt` for every try at a deployment (routing); the returned :class:`AttemptSpan`
  carries the ``traceparent`` the upstream must receive (``headers``) and is ended exactly once;
- :meth:`Tracer.finish_request` when the request is recorded (for a stream: when it ends).

The base class is the no-op tracer: it creates nothing and only forwards the client's own
``traceparent`` (and ``tracestate``) to the upstream unchanged, so tracing off costs a method call per
hook. The OpenTelemetry tracer (:mod:`interlock.telemetry.otel`) subclasses it, and
:func:`interlock.telemetry.tracing.tracer_from_settings` picks one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interlock.core.context import DeploymentInfo, RequestContext, Usage
from interlock.core.errors import GatewayError

__all__ = ["NO_TRACER", "AttemptSpan", "Tracer"]


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

    def start_request(self, ctx: RequestContext) -> None:
        """``ctx`` enters the chain."""

    def attempt(self, ctx: RequestContext, deployment: DeploymentInfo) -> AttemptSpan:
        """An attempt at ``deployment`` begins."""
        if ctx.traceparent is None:
            return _NO_SPAN
        state = ctx.header("tracestate")
        headers = {"traceparent": ctx.traceparent}
        if state:
            headers["tracestate"] = state
        return AttemptSpan(headers)

    def finish_request(self, ctx: RequestContext) -> None:
        """``ctx`` is finished and recorded (its cost and times are final)."""

    async def aclose(self) -> None:
        """Flush and stop exporting."""


NO_TRACER = Tracer()
"""The shared no-op tracer."""
