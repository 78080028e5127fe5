"""The record of one routing pick, as the request keeps it (see :mod:`interlock.routing.decision`
for how a pick is made and what each verdict means)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Candidate", "Decision", "Verdict"]

Verdict = Literal[
    "picked",
    "eligible",
    "full",
    "retry_after",
    "probe_busy",
    "tried",
    "disabled",
    "unhealthy",
    "constraint",
    "breaker_open",
]
Candidate = tuple[str, Verdict, float | None]
"""(deployment id, verdict, score)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """One pick: the model and strategy, the balancer's choice (None: nothing was left), and every
    deployment of the model with its verdict and score."""

    model: str
    strategy: str
    pick: str | None
    candidates: tuple[Candidate, ...]

    def as_json(self) -> dict[str, Any]:
        """The decision as stored with the request record."""
        return {
            "model": self.model,
            "strategy": self.strategy,
            "pick": self.pick,
            "candidates": [
                {"deployment": d, "verdict": verdict, "score": None if score is None else round(score, 6)}
                for d, verdict, score in self.candidates
            ],
        }
