"""Service-level objectives and goodput per model, over a rolling window.

A request *meets* its model's objectives when it succeeded and each configured objective held: time
to first token (for a complete answer, the time to the whole answer), time per output token, and
end-to-end latency. Goodput is the rate of requests that met them all (requests per second over the
window); compliance is the share of the judged requests that did.

Only answers and failures of the gateway or its backends are judged (see
:mod:`interlock.telemetry.outcome`): a caller's own mistake (a bad request, an unknown model, a wrong
key), a refusal by the gateway's own limits and a client that went away first neither meet nor miss
an objective. They are counted beside the judged requests so that they stay visible.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from interlock.routing.window import SlidingCounts
from interlock.telemetry.outcome import OutcomeClass

__all__ = ["Objectives", "SloTracker"]

_TOTAL, _MET, _CLIENT_ERRORS, _REFUSED, _CANCELLED = range(5)
_NOT_JUDGED: dict[str, int] = {"client_error": _CLIENT_ERRORS, "refused": _REFUSED, "cancelled": _CANCELLED}


@dataclass(frozen=True, slots=True)
class Objectives:
    ttft_s: float | None = None
    tpot_s: float | None = None
    e2e_s: float | None = None
    target: float = 0.95

    def met(self, ok: bool, ttft_s: float | None, tpot_s: float | None, e2e_s: float) -> bool:
        if not ok:
            return False
        # time to first token judges streams only: a complete answer has no first token to show,
        # and its duration grows with its length (it is judged by its time per output token)
        if self.ttft_s is not None and ttft_s is not None and ttft_s > self.ttft_s:
            return False
        if self.tpot_s is not None and tpot_s is not None and tpot_s > self.tpot_s:
            return False
        return self.e2e_s is None or e2e_s <= self.e2e_s


class _ModelWindow:
    __slots__ = ("counts", "e2e", "tpot", "ttft")

    def __init__(self, window_s: float, clock: Callable[[], float], keep: int) -> None:
        self.counts = SlidingCounts(window_s, 30, 5, clock)
        self.ttft: deque[float] = deque(maxlen=keep)
        self.tpot: deque[float] = deque(maxlen=keep)
        self.e2e: deque[float] = deque(maxlen=keep)


class SloTracker:
    """Rolling compliance, goodput and latency percentiles per model."""

    def __init__(
        self, window_s: float = 300.0, keep: int = 2000, clock: Callable[[], float] = time.monotonic
    ):
        self.window_s = window_s
        self._keep = keep
        self._clock = clock
        self._models: dict[str, _ModelWindow] = {}

    def observe(
        self,
        model: str,
        objectives: Objectives,
        outcome: OutcomeClass,
        ttft_s: float | None,
        tpot_s: float | None,
        e2e_s: float,
    ) -> None:
        """Count one finished request of ``model``; only ``ok`` and failures are judged."""
        window = self._models.get(model)
        if window is None:
            window = self._models[model] = _ModelWindow(self.window_s, self._clock, self._keep)
        not_judged = _NOT_JUDGED.get(outcome)
        if not_judged is not None:
            window.counts.add(not_judged)
            return
        ok = outcome == "ok"
        window.counts.add(_TOTAL)
        if objectives.met(ok, ttft_s, tpot_s, e2e_s):
            window.counts.add(_MET)
        if ok:
            if ttft_s is not None:
                window.ttft.append(ttft_s)
            window.e2e.append(e2e_s)
            if tpot_s is not None:
                window.tpot.append(tpot_s)

    def report(self, model: str, objectives: Objectives) -> dict[str, Any]:
        window = self._models.get(model)
        total, met, client_errors, refused, cancelled = window.counts.totals() if window else (0,) * 5
        compliance = met / total if total else None
        return {
            "model": model,
            "window_s": self.window_s,
            "requests": total,
            "met": met,
            "missed": total - met,
            "not_judged": {"client_errors": client_errors, "refused": refused, "cancelled": cancelled},
            "compliance": round(compliance, 4) if compliance is not None else None,
            "target": objectives.target,
            "goodput_rps": round(met / self.window_s, 4),
            "objectives_ms": {
                "ttft": _ms(objectives.ttft_s),
                "tpot": _ms(objectives.tpot_s),
                "e2e": _ms(objectives.e2e_s),
            },
            "ttft_ms": _percentiles(window.ttft if window else ()),
            "tpot_ms": _percentiles(window.tpot if window else ()),
            "e2e_ms": _percentiles(window.e2e if window else ()),
        }


def _ms(seconds: float | None) -> float | None:
    return round(seconds * 1000.0, 3) if seconds is not None else None


def _percentiles(samples: Iterable[float]) -> dict[str, float | None]:
    ordered = sorted(samples)
    if not ordered:
        return {"p50": None, "p95": None, "p99": None}

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000.0, 3)

    return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99)}
