"""Routing decisions: what one pick considered, why each deployment was or was not eligible, and
what the balancer chose.

The router makes a :class:`Decision` each time it picks a deployment (the first try, a retry, a
fallback model, a hedge's second attempt) and keeps it on the request; the request log stores them
with the record and the dashboard shows them on the request's page. A decision is a few small
tuples — one per deployment of the model — built in a few microseconds; JSON is made only when the
record is written, off the request path.

Verdicts, in the order they are checked:

================ ===================================================================================
``tried``        already tried by this request (tried again only in a later round, after backoff)
``disabled``     taken out of rotation by an operator
``unhealthy``    failing its provider's active health check
``constraint``   outside the pool or labels the request asked for (``x-interlock-pool``/``-labels``),
                 or outside the pools the caller's key may use
``breaker_open`` its circuit breaker is open (or half-open with its probe slots taken)
``full``         no free concurrency slot; passed over while another had room
``retry_after``  inside a ``Retry-After`` period; passed over while another was not
``probe_busy``   chosen, but its half-open breaker had just given its last probe slot away
``eligible``     a candidate the balancer did not choose
``picked``       the balancer's choice
================ ===================================================================================

Each eligible deployment carries the score its model's strategy ranks by (see :data:`SCORES`), so
a pick can be read against the alternatives.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from interlock.core.decision import Candidate, Decision, Verdict
from interlock.routing.balancers import CostAware
from interlock.routing.latency import LatencyKind
from interlock.routing.snapshot import Deployment, ModelRoute
from interlock.routing.state import RoutingState

if TYPE_CHECKING:
    from interlock.core.context import Attempt, RequestContext

__all__ = [
    "SCORES",
    "constrained",
    "decide",
    "decisions_json",
    "exclusion",
    "matches",
]

SCORES: Mapping[str, str] = {
    "p2c-ewma": "expected wait, ms (peak-EWMA latency of the request's kind × (in flight + 1) ÷ weight)",
    "session": "expected wait, ms (sessions stick to one deployment; new ones go by this)",
    "prefix": "expected wait, ms (requests sharing a prompt prefix stick together)",
    "least-outstanding": "in flight ÷ weight (lower wins)",
    "cost": "blended price, USD per 1M tokens (cheapest meeting the TTFT objective wins)",
    "weighted": "weight (chance of being picked)",
    "round-robin": "none (deployments take turns)",
}
"""What each strategy's score means, as the request page explains it."""


def matches(deployment: Deployment, ctx: RequestContext) -> bool:
    """Whether ``deployment`` is in the pool and has the labels the request asked for, and in a
    pool the caller's key may use."""
    if ctx.required_pool is not None and deployment.pool != ctx.required_pool:
        return False
    principal = ctx.principal
    if principal is not None and principal.pools.patterns and not principal.pools.allows(deployment.pool):
        return False
    labels = deployment.labels
    return all(labels.get(k) == v for k, v in ctx.required_labels.items())


def constrained(ctx: RequestContext) -> bool:
    """Whether the request is held to a pool or labels (its own, or its key's pools)."""
    principal = ctx.principal
    return (
        ctx.required_pool is not None
        or bool(ctx.required_labels)
        or (principal is not None and bool(principal.pools.patterns))
    )


def exclusion(
    state: RoutingState, model: ModelRoute, deployment: Deployment, tried: set[str], ctx: RequestContext
) -> Verdict | None:
    """Why ``deployment`` cannot be a candidate for this pick, or None when it can."""
    key = deployment.id
    if key in tried:
        return "tried"
    if key in state.disabled:
        return "disabled"
    if key in state.unhealthy:
        return "unhealthy"
    if constrained(ctx) and not matches(deployment, ctx):
        return "constraint"
    if not state.breaker(model, deployment).available():
        return "breaker_open"
    return None


def decide(
    state: RoutingState,
    model: ModelRoute,
    pick: Deployment | None,
    candidates: Sequence[Deployment],
    open_slots: Sequence[Deployment],
    verdicts: Mapping[str, Verdict],
    kind: LatencyKind = "first_token",
) -> Decision:
    """The record of one pick. ``verdicts`` holds every deployment that was not a candidate;
    ``open_slots`` are the candidates with room (when some had room, the others were passed over);
    ``kind`` is the latency the request is judged by (the expected wait the balancer compared)."""
    strategy = model.spec.routing.strategy
    score = _scorer(state, model, strategy, kind)
    passed_over = 0 < len(open_slots) < len(candidates)
    pick_id = pick.id if pick is not None else None
    rows: list[Candidate] = []
    for deployment in model.deployments:
        key = deployment.id
        verdict = verdicts.get(key)
        if verdict is not None:
            rows.append((key, verdict, None))
            continue
        if key == pick_id:
            verdict = "picked"
        elif passed_over and deployment not in open_slots:
            verdict = "retry_after" if state.load.blocked(key) else "full"
        else:
            verdict = "eligible"
        rows.append((key, verdict, score(deployment)))
    return Decision(model.name, strategy, pick_id, tuple(rows))


def _scorer(
    state: RoutingState, model: ModelRoute, strategy: str, kind: LatencyKind
) -> Callable[[Deployment], float | None]:
    """What ``strategy`` ranks a deployment by (unrounded: rounding waits for the record)."""
    load = state.load
    if strategy == "round-robin":
        return _no_score
    if strategy == "weighted":
        return _weight
    if strategy == "least-outstanding":
        return lambda d: load.get(d.id).in_flight / d.weight
    if strategy == "cost":
        balancer = state.balancer(model)
        if isinstance(balancer, CostAware):
            return balancer.price
    return lambda d: load.cost(d.id, kind) / d.weight * 1000.0


def _no_score(deployment: Deployment) -> float | None:
    return None


def _weight(deployment: Deployment) -> float | None:
    return deployment.weight


def decisions_json(decisions: Sequence[Decision], attempts: Sequence[Attempt]) -> tuple[dict[str, Any], ...]:
    """The decisions as stored with the request record, each with the index of the attempt it led
    to (``attempt``; None when no attempt followed: nothing was left, or the retry budget was spent).

    Attempts are listed as they ended and decisions as they were made; a hedge's two attempts can
    end in either order, so each attempt is matched to the earliest unmatched decision that picked
    its deployment.
    """
    views = [decision.as_json() for decision in decisions]
    for view in views:
        view["attempt"] = None
    for index, attempt in enumerate(attempts):
        for view in views:
            if view["attempt"] is None and view["pick"] == attempt.deployment:
                view["attempt"] = index
                break
    return tuple(views)
