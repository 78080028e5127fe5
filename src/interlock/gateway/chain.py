"""The stage protocol and the chain builder.

A stage does one job and either calls ``call_next`` or short-circuits (returns a reply itself, or
raises a ``GatewayError``). The chain is built once at start-up, like a middleware stack.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from interlock.core.context import Reply, RequestContext

__all__ = ["Next", "Stage", "build_chain"]

Next = Callable[[RequestContext], Awaitable[Reply]]


class Stage(Protocol):
    """One step of the request path."""

    async def __call__(self, ctx: RequestContext, call_next: Next) -> Reply: ...


async def _end_of_chain(ctx: RequestContext) -> Reply:
    raise RuntimeError("the last stage of the chain must not call call_next")


def _bind(stage: Stage, call_next: Next) -> Next:
    async def run(ctx: RequestContext) -> Reply:
        return await stage(ctx, call_next)

    return run


def build_chain(stages: Sequence[Stage]) -> Next:
    """Compose ``stages`` (outermost first) into one callable."""
    handler: Next = _end_of_chain
    for stage in reversed(stages):
        handler = _bind(stage, handler)
    return handler
