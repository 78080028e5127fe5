"""``auth``: turn the caller's key into a principal; 401 here.

The server's edge checks the key from the headers before it reads a body (so an unauthenticated
caller cannot make the gateway buffer one), using the same key cache. It hands its verdict on: the
principal it found (kept here, so a key is looked up once per request), or the refusal it answered
with (raised here, so the refused request is recorded by ``account`` like any other failure). A
context that comes with neither — built by a caller other than the edge — is authenticated here.
"""

from __future__ import annotations

from interlock.core.context import Reply, RequestContext
from interlock.gateway.chain import Next
from interlock.governance.keys import KeyCache

__all__ = ["AuthStage"]


class AuthStage:
    """Sets ``ctx.principal`` or raises ``AuthenticationFailed`` / ``ServiceUnavailable``."""

    def __init__(self, keys: KeyCache) -> None:
        self._keys = keys

    async def __call__(self, ctx: RequestContext, call_next: Next) -> Reply:
        if ctx.principal is None:
            if ctx.error is not None:
                raise ctx.error  # the edge refused this request from its headers
            ctx.principal = await self._keys.authenticate(ctx.api_key)
        return await call_next(ctx)
