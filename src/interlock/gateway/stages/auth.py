"""``auth``: turn the caller's key into a principal; 401 here."""

from __future__ import annotations

from interlock.gateway.chain import Next
from interlock.gateway.context import Reply, RequestContext
from interlock.governance.keys import KeyCache

__all__ = ["AuthStage"]


class AuthStage:
    def __init__(self, keys: KeyCache) -> None:
        self._keys = keys

    async def __call__(self, ctx: RequestContext, call_next: Next) -> Reply:
        ctx.principal = await self._keys.authenticate(ctx.api_key)
        return await call_next(ctx)
