"""Lay a request's attempts out on a time axis: the waterfall on the request detail page.

Attempts are recorded with their start after the request's arrival (``start_ms``) and their
duration (``latency_ms``), so each bar sits where the attempt really ran: backoff waits show as
gaps, and a hedge's attempts overlap. A streamed attempt that was returned lasts until its stream
ended, with a mark at its first token (``first_token_ms``, from the attempt's start). Records
written before attempts carried ``start_ms`` are laid out end to end (exact for retries and
fallbacks apart from backoff waits), or, when hedged, aligned on their ends.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["waterfall"]

_TICKS = 5


def waterfall(request: Mapping[str, Any]) -> dict[str, Any]:
    """Rows (one per attempt, after a row for the whole request), axis ticks and markers, in %."""
    attempts = [a for a in request.get("attempts") or () if isinstance(a, Mapping)]
    hedged = bool((request.get("extra") or {}).get("hedged"))
    placed = _place(attempts, hedged)
    total = float(request.get("latency_ms") or 0.0)
    step, span = _axis(max([total, *(start + duration for start, duration, _ in placed)]))
    rows = [_row("request", str(_outcome_of(request)), 0.0, total, span, is_request=True)]
    for index, (start, duration, attempt) in enumerate(placed):
        label = f"#{index + 1} {attempt.get('deployment', '?')}"
        row = _row(label, str(attempt.get("outcome", "?")), start, duration, span)
        first = attempt.get("first_token_ms")
        if isinstance(first, int | float):
            row["first_token_ms"] = float(first)
            row["first_token_pct"] = round(min(100.0, 100.0 * (start + float(first)) / span), 3)
        rows.append(row)
    ttft = request.get("ttft_ms")
    return {
        "rows": rows,
        "span_ms": span,
        "ticks": [{"ms": step * i, "pct": 100.0 * step * i / span} for i in range(round(span / step) + 1)],
        "ttft_pct": 100.0 * float(ttft) / span if ttft is not None else None,
        "ttft_ms": ttft,
        "approximate": not all("start_ms" in a for a in attempts),
        "hedged": hedged,
    }


def _axis(longest_ms: float) -> tuple[float, float]:
    """A round tick step (1, 2 or 5 x 10^n ms) and the axis length: whole steps covering ``longest_ms``."""
    longest = max(longest_ms, 0.001)
    raw = longest / _TICKS
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return step, math.ceil(longest / step - 1e-9) * step


def _place(attempts: list[Mapping[str, Any]], hedged: bool) -> list[tuple[float, float, Mapping[str, Any]]]:
    durations = [max(0.0, float(a.get("latency_ms") or 0.0)) for a in attempts]
    if attempts and all("start_ms" in a for a in attempts):
        return [(float(a["start_ms"]), d, a) for a, d in zip(attempts, durations, strict=True)]
    if hedged:
        end = max(durations, default=0.0)
        return [(end - d, d, a) for a, d in zip(attempts, durations, strict=True)]
    placed, clock = [], 0.0
    for attempt, duration in zip(attempts, durations, strict=True):
        placed.append((clock, duration, attempt))
        clock += duration
    return placed


def _outcome_of(request: Mapping[str, Any]) -> str:
    status = int(request.get("status") or 0)
    return "ok" if status < 400 else str(request.get("error_kind") or status)


def _row(
    label: str, outcome: str, start: float, duration: float, span: float, is_request: bool = False
) -> dict[str, Any]:
    left = 100.0 * start / span
    width = max(0.4, 100.0 * duration / span)
    return {
        "label": label,
        "outcome": outcome,
        "start_ms": round(start, 3),
        "duration_ms": round(duration, 3),
        "left_pct": round(min(left, 99.6), 3),
        "width_pct": round(min(width, 100.0 - min(left, 99.6)), 3),
        "level": "good" if outcome == "ok" else "muted" if outcome in ("cancelled", "abandoned") else "bad",
        "is_request": is_request,
    }
