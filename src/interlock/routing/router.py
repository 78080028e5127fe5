"""The router: pick a deployment, run the attempt, and on failure retry, fall back or hedge.

Order of attempts, explicit and recorded in the request's trace:

1. deployments of the model asked for, each chosen by the model's balancer among the healthy ones
   not yet tried (an untried deployment is tried at once; a tried one again only after backoff);
2. the model's ``fallbacks``, in order, the same way;
3. on a context-length error (or a prompt estimated too long), ``context_window_fallbacks``; on a
   content-policy refusal, ``content_policy_fallbacks``.

Retries obey the model's retry budget, so an outage is not amplified. A caller's own 4xx is never
retried. When everything fails, one attempt's error is returned as it was; several failures become a
503 naming what was tried (a 429 with the shortest ``Retry-After`` when all of them were rate limits).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Coroutine, Mapping
from typing import Any, NoReturn

from interlock.core.context import Chunks, Reply, RequestContext
from interlock.core.decision import Verdict
from interlock.core.errors import (
    GatewayError,
    InvalidRequest,
    ModelNotFound,
    PoolNotAllowed,
    RateLimited,
    ServiceUnavailable,
    UpstreamTimeout,
)
from interlock.core.tracing import NO_TRACER, Tracer
from interlock.providers.base import Provider
from interlock.routing.attempt import Stall, first_byte_due, run_attempt
from interlock.routing.balancers import RouteHints, prompt_text
from interlock.routing.decision import constrained, decide, exclusion, matches
from interlock.routing.hedge import hedged
from interlock.routing.resume import Restart, continuation_body, resumable
from interlock.routing.retry import RetryPolicy, backoff_delay, classify
from interlock.routing.snapshot import Deployment, ModelRoute, RoutingSnapshot, SnapshotRef
from interlock.routing.state import RoutingState

__all__ = ["Router", "estimate_tokens"]


def estimate_tokens(ctx: RequestContext) -> int:
    """A cheap upper-leaning estimate of prompt + completion tokens (4 characters a token)."""
    body = ctx.body
    completion = body.get("max_completion_tokens") or body.get("max_tokens") or 0
    return len(prompt_text(body)) // 4 + (completion if isinstance(completion, int) else 0)


class Router:
    def __init__(
        self,
        snapshot: SnapshotRef,
        providers: Mapping[str, Provider],
        state: RoutingState,
        tracer: Tracer = NO_TRACER,
    ) -> None:
        self._snapshot = snapshot
        self._providers = providers
        self.state = state
        self._tracer = tracer

    async def route(self, ctx: RequestContext) -> Reply:
        """Answer ``ctx`` from one of its model's deployments (or a fallback's), or raise."""
        snapshot = self._snapshot.current
        route = snapshot.models.get(ctx.model)
        if route is None:
            raise ModelNotFound(f"The model '{ctx.model}' does not exist.", param="model")
        if route.kind != ctx.operation:
            raise InvalidRequest(
                f"The model '{ctx.model}' serves {route.kind}, not {ctx.operation}.", param="model"
            )
        total = route.spec.timeouts.total_s
        if total is None:
            return await self._run(ctx, route, snapshot)
        try:
            async with asyncio.timeout(total):
                return await self._run(ctx, route, snapshot)
        except TimeoutError:
            raise UpstreamTimeout(f"The request did not complete within {total:g} s.") from None

    async def _run(self, ctx: RequestContext, route: ModelRoute, snapshot: RoutingSnapshot) -> Reply:
        budget = self.state.budget(route)
        budget.on_request()
        policy = budget.policy
        hints = RouteHints(session=ctx.session, body=ctx.body)
        models = deque(self._initial_models(ctx, route, snapshot))
        visited: set[str] = set()
        failures: list[tuple[Deployment, GatewayError]] = []
        while models:
            model = models.popleft()
            if model.name in visited:
                continue
            if visited and ctx.principal is not None and not ctx.principal.models.allows(model.name):
                continue  # a fallback the caller's key may not use
            if not visited:  # a fallback that cannot match is skipped; the first model must
                self._check_labels(ctx, model)
            visited.add(model.name)
            tried: set[str] = set()
            while len(failures) < policy.max_attempts:
                deployment = self._pick(ctx, model, hints, tried)
                if deployment is None:
                    if (
                        tried
                        and not models
                        and not _all_refused_here(ctx, len(tried))
                        and self._retry_round_allowed(failures, policy.max_retry_after_s)
                    ):
                        tried = set()  # another round over the same deployments, after backoff
                        deployment = self._pick(ctx, model, hints, tried)
                    if deployment is None:
                        break
                repeat = any(d.id == deployment.id for d, _ in failures)
                if failures and not budget.try_retry():
                    self._give_up(model, failures, "the retry budget is spent")
                if repeat:
                    await self._backoff(ctx, deployment, failures, policy)
                try:
                    reply = await self._try(ctx, model, deployment, hints, tried)
                except GatewayError as err:
                    failures.append((deployment, err))
                    tried.add(deployment.id)
                    kind = classify(err)
                    if kind == "fatal":
                        raise
                    if kind in ("context", "content"):
                        extra = (
                            model.context_window_fallbacks
                            if kind == "context"
                            else model.content_policy_fallbacks
                        )
                        if not extra:
                            raise
                        models.extendleft(snapshot.models[name] for name in reversed(extra))
                        break
                else:
                    if reply.stream is not None and model.spec.routing.resume_streams:
                        reply.stream = resumable(reply.stream, self._restarter(ctx, model, hints, reply))
                    return reply
        self._give_up(route, failures, None)

    def _initial_models(
        self, ctx: RequestContext, route: ModelRoute, snapshot: RoutingSnapshot
    ) -> list[ModelRoute]:
        if (
            route.context_window
            and route.context_window_fallbacks
            and estimate_tokens(ctx) > route.context_window
        ):
            names = route.context_window_fallbacks
        else:
            names = (route.name, *route.fallbacks)
        return [snapshot.models[name] for name in names]

    async def _try(
        self,
        ctx: RequestContext,
        model: ModelRoute,
        deployment: Deployment,
        hints: RouteHints,
        tried: set[str],
    ) -> Reply:
        if not model.spec.hedge.enabled:
            return await self._attempt(ctx, model, deployment)
        budget = self.state.hedge_budget(model)
        budget.on_request()
        delay = self._hedge_delay(ctx, model, deployment)
        if delay is None:
            return await self._attempt(ctx, model, deployment)
        stall = Stall()

        def backup() -> Coroutine[Any, Any, Reply] | None:
            # chosen only when the hedge fires: picking reserves a half-open probe slot
            if not budget.try_retry():
                return None
            second = self._pick(ctx, model, hints, tried | {deployment.id})
            if second is None:
                return None
            stall.fired = True
            return self._attempt(ctx, model, second)

        return await hedged(ctx, delay, self._attempt(ctx, model, deployment, stall), backup)

    def _restarter(self, ctx: RequestContext, model: ModelRoute, hints: RouteHints, reply: Reply) -> Restart:
        """How a stream that broke mid-way goes on: a continuation on a deployment it has not
        broken on, drawn from the model's retry budget."""
        broken: set[str] = set()
        current = reply

        async def restart(partial: str, tokens: int) -> AsyncIterator[Chunks] | None:
            nonlocal current
            if current.deployment is not None:
                broken.add(current.deployment.id)
            if not self.state.budget(model).try_retry():
                return None
            deployment = self._pick(ctx, model, hints, set(broken))
            if deployment is None:
                return None
            body = continuation_body(ctx.body, partial, tokens)
            current = await self._attempt(ctx, model, deployment, body=body)
            ctx.deployment = deployment
            return current.stream

        return restart

    def _attempt(
        self,
        ctx: RequestContext,
        model: ModelRoute,
        deployment: Deployment,
        stall: Stall | None = None,
        body: dict[str, Any] | None = None,
    ) -> Coroutine[Any, Any, Reply]:
        provider = self._providers[deployment.provider]
        return run_attempt(ctx, model, deployment, provider, self.state, self._tracer, stall, body)

    def _hedge_delay(self, ctx: RequestContext, model: ModelRoute, deployment: Deployment) -> float | None:
        """How long the first attempt runs alone: ``stall_factor`` times what requests of its shape
        have taken lately on the deployment (a complete answer: one of ``max_tokens``; a long answer
        is not a slow one), and for a stream at least the ``quantile`` of its recent first tokens."""
        if len(model.deployments) < 2:
            return None
        spec = model.spec.hedge
        delay = first_byte_due(ctx, self.state.latency(deployment), spec.stall_factor)
        if ctx.stream:
            quantile = self.state.load.ttft_quantile(deployment.id, spec.quantile)
            if quantile is not None:
                delay = max(delay or 0.0, quantile)
        if delay is None:
            return None
        return max(delay, spec.min_delay_ms / 1000)

    def _pick(
        self, ctx: RequestContext, model: ModelRoute, hints: RouteHints, tried: set[str]
    ) -> Deployment | None:
        """The balancer's choice among the eligible deployments, or None; either way the decision
        (every deployment's verdict and score) is kept on the request."""
        state = self.state
        verdicts: dict[str, Verdict] = {}
        candidates: list[Deployment] = []
        for d in model.deployments:
            why = exclusion(state, model, d, tried, ctx)
            if why is None:
                candidates.append(d)
            else:
                verdicts[d.id] = why
        choice: Deployment | None = None
        open_slots: list[Deployment] = []
        while candidates:
            open_slots = [
                d for d in candidates if not state.load.blocked(d.id) and state.limiter(model, d).has_room()
            ]
            choice = state.balancer(model).choose(open_slots or candidates, hints)
            if state.breaker(model, choice).allows():
                break
            verdicts[choice.id] = "probe_busy"
            candidates.remove(choice)
            choice = None
        ctx.decisions.append(
            decide(state, model, choice, candidates, open_slots, verdicts, hints.latency_kind)
        )
        return choice

    @staticmethod
    def _check_labels(ctx: RequestContext, model: ModelRoute) -> None:
        if not constrained(ctx) or any(matches(d, ctx) for d in model.deployments):
            return
        pools = ctx.principal.pools if ctx.principal is not None else None
        if pools is not None and pools.patterns and not any(pools.allows(d.pool) for d in model.deployments):
            raise PoolNotAllowed(
                f"No deployment of model '{model.name}' is in a pool this API key may use "
                f"({', '.join(pools.patterns)}).",
                param="model",
            )
        wanted = ", ".join(
            ([f"pool={ctx.required_pool}"] if ctx.required_pool else [])
            + [f"{k}={v}" for k, v in sorted(ctx.required_labels.items())]
        )
        raise InvalidRequest(f"No deployment of model '{model.name}' matches {wanted}.", param="model")

    @staticmethod
    def _retry_round_allowed(
        failures: list[tuple[Deployment, GatewayError]], max_retry_after_s: float
    ) -> bool:
        last = failures[-1][1] if failures else None
        return last is not None and (last.retry_after is None or last.retry_after <= max_retry_after_s)

    async def _backoff(
        self,
        ctx: RequestContext,
        deployment: Deployment,
        failures: list[tuple[Deployment, GatewayError]],
        policy: RetryPolicy,
    ) -> None:
        previous = [err for d, err in failures if d.id == deployment.id]
        delay = backoff_delay(len(failures), policy, self.state.rng.random)
        retry_after = previous[-1].retry_after if previous else None
        if retry_after is not None:
            delay = max(delay, min(retry_after, policy.max_retry_after_s))
        ctx.begin_wait()
        try:
            await asyncio.sleep(delay)
        finally:
            ctx.end_wait()

    @staticmethod
    def _give_up(
        route: ModelRoute, failures: list[tuple[Deployment, GatewayError]], reason: str | None
    ) -> NoReturn:
        """Raise the error that sums up every failed attempt."""
        if not failures:
            raise ServiceUnavailable(
                f"No deployment of model '{route.name}' is available: every one is disabled or its "
                "circuit breaker is open.",
                retry_after=1.0,
            )
        if len(failures) == 1 and reason is None:
            raise failures[0][1]
        counts: dict[str, int] = {}
        for d, err in failures:
            label = f"{d.id} ({err.kind})"
            counts[label] = counts.get(label, 0) + 1
        tried = ", ".join(f"{label} x{n}" if n > 1 else label for label, n in counts.items())
        why = f"; {reason}" if reason else ""
        last = failures[-1][1].message
        if all(err.status == 429 for _, err in failures):
            waits = [err.retry_after for _, err in failures if err.retry_after is not None]
            raise RateLimited(
                f"Every deployment tried is rate limited: {tried}{why}. Last error: {last}",
                retry_after=min(waits) if waits else 1.0,
            )
        raise ServiceUnavailable(
            f"All {len(failures)} attempts failed: {tried}{why}. Last error: {last}", retry_after=1.0
        )


def _all_refused_here(ctx: RequestContext, count: int) -> bool:
    """Whether the last ``count`` attempts were all refused by the gateway's own concurrency limits
    (no upstream reached): every deployment is saturated, and the fast 429 is the answer — a
    second round after a backoff would only make the requests the gateway admits slower."""
    recent = ctx.attempts[-count:]
    return len(recent) == count and all(not attempt.upstream for attempt in recent)
