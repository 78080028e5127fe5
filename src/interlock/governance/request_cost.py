"""A request's maximum cost, worked out once and kept on the request for every stage that needs it."""

from __future__ import annotations

from interlock.core.context import RequestContext
from interlock.governance.estimate import max_cost
from interlock.routing.snapshot import SnapshotRef

__all__ = ["request_max_cost"]


def request_max_cost(
    ctx: RequestContext, snapshot: SnapshotRef, default_output_tokens: int
) -> tuple[int, int, int]:
    """(estimated prompt tokens, most output tokens, most cost in micro-dollars) for ``ctx``."""
    found = ctx.max_cost
    if found is None:
        route = snapshot.current.models.get(ctx.model)
        estimate = max_cost(route, ctx.body, default_output_tokens)
        found = ctx.max_cost = (estimate.prompt_tokens, estimate.output_tokens, estimate.micros)
    return found
