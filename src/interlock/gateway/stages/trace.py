"""``trace``: open the request's span as it enters the chain, and end it when it is recorded.

The attempts' spans (opened by routing, one per try at a deployment) hang under the request's span.
The span ends with the request's record — for a stream, at its end — so this stage hands ``account``
its :meth:`TraceStage.recorded` hook rather than wrapping the stream a second time.
"""

from __future__ import annotations

from interlock.core.context import Reply, RequestContext
from interlock.core.tracing import Tracer
from interlock.gateway.chain import Next
from interlock.store import RequestRecord

__all__ = ["TraceStage"]


class TraceStage:
    """Starts the request's trace; :meth:`recorded` finishes it."""

    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer

    async def __call__(self, ctx: RequestContext, call_next: Next) -> Reply:
        self._tracer.start_request(ctx)
        return await call_next(ctx)

    def recorded(self, ctx: RequestContext, record: RequestRecord) -> None:
        """``ctx`` is finished and recorded: end its span."""
        self._tracer.finish_request(ctx)
