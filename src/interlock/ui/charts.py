"""Chart specifications: plain JSON that ``static/dashboard.js`` draws with uPlot.

A spec is ``{"kind", "unit", "x", "series": [{"label", "color", "values"}]}``. ``x`` holds Unix
seconds for time charts; ``kind`` is ``line``, ``area`` (stacked-looking filled lines), ``bars`` or
``scatter``. Keeping the spec this small lets a section build charts with no JavaScript of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

__all__ = [
    "CLIENT_ERROR_COLOR",
    "ERROR_COLOR",
    "PALETTE",
    "REFUSED_COLOR",
    "ChartKind",
    "Series",
    "chart",
    "color",
    "per_second",
    "series",
    "time_window",
]

ChartKind = Literal["line", "area", "bars", "scatter"]

PALETTE = (
    "#2563eb",  # blue
    "#16a34a",  # green
    "#d97706",  # amber
    "#9333ea",  # violet
    "#0891b2",  # cyan
    "#db2777",  # pink
    "#65a30d",  # lime
    "#475569",  # slate
)
"""Series colours in order; chosen to stay distinguishable for the common colour-vision deficiencies
when paired with the labels in each chart's legend."""

ERROR_COLOR = "#dc2626"
"""Failures of the gateway or its backends."""
CLIENT_ERROR_COLOR = "#d97706"
"""The callers' own 4xx."""
REFUSED_COLOR = "#9333ea"
"""The gateway's own 429 refusals."""

Series = dict[str, Any]


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def series(label: str, values: Sequence[float | None], color_: str | None = None, index: int = 0) -> Series:
    """One line (or bar set) of a chart."""
    return {"label": label, "color": color_ or color(index), "values": list(values)}


def chart(
    kind: ChartKind,
    x: Sequence[datetime] | Sequence[float],
    lines: Sequence[Series],
    *,
    unit: str = "",
    height: int = 200,
) -> dict[str, Any]:
    """A chart spec; ``x`` may be datetimes (sent as Unix seconds) or numbers."""
    xs = [value.timestamp() if isinstance(value, datetime) else float(value) for value in x]
    points = sum(1 for line in lines for value in line["values"] if value is not None)
    return {"kind": kind, "unit": unit, "height": height, "x": xs, "series": list(lines), "points": points}


_BUCKET_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
_SHORTEST_WINDOW_S = 30.0


def time_window(
    now: datetime, earliest: datetime | None, *, longest_s: float, points: int = 90
) -> tuple[datetime, int]:
    """Where a live chart starts and how wide its buckets are.

    The chart covers ``longest_s`` seconds, or — for a gateway younger than that — only the time
    since its first request (at least 30 seconds), so a fresh gateway's charts are full rather than a
    few dots at the right edge. Buckets are the narrowest step that keeps about ``points`` of them.
    """
    span = longest_s
    if earliest is not None:
        age = (now - earliest).total_seconds()
        span = min(longest_s, max(_SHORTEST_WINDOW_S, age * 1.05))
    bucket = next((step for step in _BUCKET_STEPS_S if span / step <= points), _BUCKET_STEPS_S[-1])
    return now - timedelta(seconds=span), bucket


def per_second(count: float, elapsed_s: float, bucket_s: float) -> float | None:
    """A bucket's rate. The bucket still filling is left out (``None``) until it has had half its
    time, so the line does not dive at its right end every time a new bucket starts."""
    if elapsed_s < max(1.0, bucket_s / 2):
        return None
    return round(count / elapsed_s, 4)
