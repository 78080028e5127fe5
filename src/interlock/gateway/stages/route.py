"""``route``: the terminal stage. The router picks deployments and runs the attempts."""

from __future__ import annotations

from interlock.core.context import Reply, RequestContext
from interlock.gateway.chain import Next
from interlock.routing.router import Router

__all__ = ["RouteStage"]


class RouteStage:
    def __init__(self, router: Router) -> None:
        self._router = router

    async def __call__(self, ctx: RequestContext, call_next: Next) -> Reply:
        reply = await self._router.route(ctx)
        ctx.deployment = reply.deployment
        return reply
