"""``auth``: turn the caller's key into a principal, and hold it to its allow-lists; 401/403 here.

The server's edge checks the key from the headers before it reads a body (so an unauthenticated
caller cannot make the gateway buffer one), using the same key cache. It hands its verdict on: the
principal it found (kept here, so a key is looked up once per request), or the refusal it answered
with (raised here, so the refused request is recorded by ``account`` like any other failure). A
context that comes with neither — built by a caller other than the edge — is authenticated here.

Then the key's allow-lists: a model it may not use is a 403 ``model_not_allowed`` naming the model;
a pool it pins (``x-interlock-pool``) that it may not use is a 403 ``pool_not_allowed``. Both lists
were compiled when the key was loaded: a check is a set lookup (plus one regex match for globs).
Routing keeps a pool-limited key's requests inside its pools (``routing.decision.matches``).
"""

from __future__ import annotations

from interlock.core.context import Principal, Reply, RequestContext
from interlock.core.errors import ModelNotAllowed, PoolNotAllowed
from interlock.gateway.chain import Next
from interlock.governance.keys import KeyCache

__all__ = ["AuthStage", "check_allowed"]


def check_allowed(principal: Principal, ctx: RequestContext) -> None:
    """Raise a 403 when ``principal`` may not use the model or the pinned pool of ``ctx``."""
    if not principal.models.allows(ctx.model):
        raise ModelNotAllowed(f"This API key may not use the model '{ctx.model}'.", param="model")
    pool = ctx.required_pool
    if pool is not None and not principal.pools.allows(pool):
        raise PoolNotAllowed(
            f"This API key may not use the pool '{pool}' (x-interlock-pool).", param="x-interlock-pool"
        )


class AuthStage:
    """Sets ``ctx.principal`` or raises ``AuthenticationFailed`` / ``ServiceUnavailable``; then
    raises ``ModelNotAllowed`` / ``PoolNotAllowed`` for what the key may not use."""

    def __init__(self, keys: KeyCache) -> None:
        self._keys = keys

    async def __call__(self, ctx: RequestContext, call_next: Next) -> Reply:
        principal = ctx.principal
        if principal is None:
            if ctx.error is not None:
                raise ctx.error  # the edge refused this request from its headers
            principal = ctx.principal = await self._keys.authenticate(ctx.api_key)
        if principal.models.patterns or principal.pools.patterns:
            check_allowed(principal, ctx)
        return await call_next(ctx)
