"""Outcome classes: whose fault a request's result was, in six bounded values.

========================= ==========================================================================
``ok``                    answered (status below 400)
``client_error``          the caller's mistake: a bad request, an unknown model, a wrong or missing
                          key (401/403), or a request the upstream refused as invalid
``refused``               a 429 of the gateway's own: a rate limit, or every deployment's
                          concurrency limit full (load shedding); the upstream was never asked
``upstream_error``        a backend failed: an error status, a timeout, a refused connection, a
                          broken stream, its own 429 — or every attempt failed that way
``gateway_error``         a 5xx of the gateway's own making: no deployment could be tried (all
                          disabled, or every breaker open), or an internal error
``cancelled``             the client went away before the answer was complete (499)
========================= ==========================================================================

Only ``upstream_error`` and ``gateway_error`` count as failures: in error rates and against a model's
SLO. Client errors, refusals and cancellations are counted and shown on their own, and a model's
SLO neither gains nor loses by them — a caller's typo is not an outage, and a request the gateway
refused to protect its backends is visible as a refusal instead of hidden in an error rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final, Literal

from interlock.core.context import CLIENT_CLOSED
from interlock.core.errors import UpstreamError

if TYPE_CHECKING:
    from interlock.core.context import Attempt
    from interlock.core.errors import GatewayError

__all__ = ["FAILURES", "OUTCOME_CLASSES", "OutcomeClass", "classify", "classify_status"]

OutcomeClass = Literal["ok", "client_error", "refused", "upstream_error", "gateway_error", "cancelled"]
OUTCOME_CLASSES: Final[tuple[OutcomeClass, ...]] = (
    "ok",
    "client_error",
    "refused",
    "upstream_error",
    "gateway_error",
    "cancelled",
)
FAILURES: Final[tuple[OutcomeClass, ...]] = ("upstream_error", "gateway_error")
"""The classes that count in error rates and against SLOs."""

_NO_VERDICT = ("ok", "cancelled", "abandoned")


def classify(status: int, error: GatewayError | None, attempts: Sequence[Attempt] = ()) -> OutcomeClass:
    """The outcome class of a finished request."""
    if status < 400:
        return "ok"
    if status == CLIENT_CLOSED:
        return "cancelled"
    if isinstance(error, UpstreamError):
        return "upstream_error"
    if status >= 500 or status == 429:
        # the router sums several failed attempts up in one 503 (or a 429 when all were rate
        # limits): whose fault depends on whether any of them reached a backend and failed there
        if any(a.upstream and a.outcome not in _NO_VERDICT for a in attempts):
            return "upstream_error"
        return "refused" if status == 429 else "gateway_error"
    return "client_error"


def classify_status(status: int, error_kind: str | None) -> OutcomeClass:
    """A best guess from the status and error kind alone, for records written before the class was
    (a 429 counts as a refusal unless its kind names the upstream)."""
    if status < 400:
        return "ok"
    if status == CLIENT_CLOSED:
        return "cancelled"
    upstream = (error_kind or "").startswith("upstream_") and error_kind != "upstream_rejected"
    if upstream:
        return "upstream_error"
    if status == 429:
        return "refused"
    return "gateway_error" if status >= 500 else "client_error"
