"""``limits``: requests, tokens and cost per minute, and concurrent requests; 429 here.

Every rate limit that applies to the caller (its key, user, team, org, the whole gateway, and the
ones for the model it asked for) is checked and taken in one atomic call to the shared counters
(:mod:`interlock.governance.ratelimits`): one request, the request's estimated tokens and its
maximum cost, and a concurrency slot. Refused: a 429 naming the limit, with ``Retry-After``. The
answer carries OpenAI's ``x-ratelimit-*`` headers either way. The ticket is settled with the real
token count and cost when the request is recorded (:mod:`interlock.governance.holds`).
"""

from __future__ import annotations

from interlock.core.context import Reply, RequestContext
from interlock.core.errors import InvalidRequest, RateLimited
from interlock.gateway.chain import Next
from interlock.governance.holds import LimitHold
from interlock.governance.ratelimits import Admitted, Limited, RateLimiter, retry_after_header
from interlock.governance.request_cost import request_max_cost
from interlock.routing.snapshot import SnapshotRef

__all__ = ["LimitsStage"]

_WHAT = {
    "requests": "requests per minute",
    "tokens": "tokens per minute",
    "cost": "spend per minute",
    "concurrent": "concurrent requests",
}


class LimitsStage:
    def __init__(self, limiter: RateLimiter, snapshot: SnapshotRef, default_output_tokens: int) -> None:
        self._limiter = limiter
        self._snapshot = snapshot
        self._default_output = default_output_tokens

    async def __call__(self, ctx: RequestContext, call_next: Next) -> Reply:
        principal = ctx.principal
        levels = self._limiter.levels(principal, ctx.model) if principal is not None else ()
        if not levels:
            return await call_next(ctx)
        prompt, output, micros = request_max_cost(ctx, self._snapshot, self._default_output)
        outcome = await self._limiter.acquire(levels, tokens=prompt + output, cost=micros)
        for name, value in outcome.headers.as_openai().items():
            ctx.reply_headers.append((name.encode(), value.encode()))
        if isinstance(outcome, Limited):
            raise _refusal(outcome, prompt + output)
        assert isinstance(outcome, Admitted)
        ctx.holds.append(LimitHold(self._limiter, outcome.ticket))
        return await call_next(ctx)


def _refusal(limited: Limited, tokens: int) -> InvalidRequest | RateLimited:
    rule = limited.limit
    who = "everyone" if rule.scope.kind == "global" else f"{rule.scope.kind} '{limited.subject}'"
    what = _WHAT[limited.kind]
    if limited.retry_after_s is None:  # more than the limit allows in a whole minute
        return InvalidRequest(
            f"This request (about {tokens} tokens at most) can never fit the rate limit "
            f"'{rule.name}' ({what} for {who}); lower max_tokens.",
            param="max_tokens",
        )
    retry = retry_after_header(limited)
    return RateLimited(
        f"Rate limit '{rule.name}' reached ({what} for {who}); retry after {retry} s.",
        retry_after=limited.retry_after_s,
    )
