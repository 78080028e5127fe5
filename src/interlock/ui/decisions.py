"""A request's routing decisions as the request page shows them: per pick, every deployment of the
model with its verdict (picked, not chosen, or why it was not a candidate) and its score."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from interlock.routing.decision import SCORES

__all__ = ["VERDICTS", "decision_views"]

VERDICTS: Mapping[str, tuple[str, str]] = {
    "picked": ("picked", "good"),
    "eligible": ("not chosen", ""),
    "full": ("no free slot", "warn"),
    "retry_after": ("in Retry-After", "warn"),
    "probe_busy": ("probe slot taken", "warn"),
    "tried": ("already tried", "muted"),
    "disabled": ("disabled", "bad"),
    "unhealthy": ("unhealthy", "bad"),
    "constraint": ("pool/labels mismatch", "muted"),
    "breaker_open": ("breaker open", "bad"),
}
"""Verdict → (what the page says, its colour)."""


def decision_views(
    decisions: Sequence[Mapping[str, Any]], attempts: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """One view per decision, in the order the picks were made."""
    return [_view(index, d, attempts) for index, d in enumerate(decisions) if isinstance(d, Mapping)]


def _view(index: int, decision: Mapping[str, Any], attempts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    strategy = str(decision.get("strategy") or "")
    attempt = decision.get("attempt")
    led_to = attempts[attempt] if isinstance(attempt, int) and 0 <= attempt < len(attempts) else None
    return {
        "number": index + 1,
        "model": decision.get("model"),
        "strategy": strategy,
        "score_meaning": SCORES.get(strategy, "score"),
        "pick": decision.get("pick"),
        "attempt": attempt + 1 if led_to is not None and isinstance(attempt, int) else None,
        "attempt_outcome": led_to.get("outcome") if led_to is not None else None,
        "attempt_level": _attempt_level(led_to.get("outcome") if led_to is not None else None),
        "candidates": [_candidate(c) for c in decision.get("candidates") or () if isinstance(c, Mapping)],
    }


def _candidate(candidate: Mapping[str, Any]) -> dict[str, Any]:
    verdict = str(candidate.get("verdict") or "")
    label, level = VERDICTS.get(verdict, (verdict, ""))
    return {
        "deployment": candidate.get("deployment"),
        "verdict": verdict,
        "label": label,
        "level": level,
        "score": candidate.get("score"),
    }


def _attempt_level(outcome: Any) -> str:
    if outcome == "ok":
        return "good"
    return "muted" if outcome in (None, "cancelled", "abandoned") else "bad"
