"""Small charts as inline SVG strings, drawn in Python: no JavaScript, no fonts or files to fetch.

Each function takes labelled series and returns one ``<svg>`` element sized for a report page.
Missing values (``None``) leave gaps. Colours come from a fixed palette, in series order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

__all__ = ["PALETTE", "bar_chart", "hbar_chart", "line_chart"]

PALETTE = ("#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777")
_W, _H = 640, 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 12, 32, 48

Series = tuple[str, Sequence[float | None]]


def _nice_max(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × a power of ten that is at least ``value``."""
    if value <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude * (1 + 1e-9):
            return step * magnitude
    return value


def _fmt(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:.4g}"


def _frame(title: str, labels: Sequence[str], top: float, unit: str) -> list[str]:
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" '
        f'role="img" aria-label="{escape(title)}" font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<text x="{_LEFT}" y="14" font-weight="bold" font-size="12" fill="#111827">{escape(title)}</text>',
    ]
    for i in range(5):
        y = _TOP + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_W - _RIGHT}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        parts.append(
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#6b7280">'
            f"{escape(_fmt(top * i / 4))}{escape(unit)}</text>"
        )
    step = plot_w / max(len(labels), 1)
    every = max(1, len(labels) // 10)
    for i, label in enumerate(labels):
        if i % every == 0:
            x = _LEFT + step * (i + 0.5)
            parts.append(
                f'<text x="{x:.1f}" y="{_H - _BOTTOM + 16}" text-anchor="middle" fill="#374151">'
                f"{escape(label)}</text>"
            )
    return parts


def _legend(series: Sequence[Series]) -> list[str]:
    parts, x = [], _LEFT
    for i, (name, _) in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        parts.append(f'<rect x="{x}" y="{_H - 16}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{x + 14}" y="{_H - 7}" fill="#374151">{escape(name)}</text>')
        x += 24 + 7 * len(name)
    return parts


def bar_chart(title: str, labels: Sequence[str], series: Sequence[Series], unit: str = "") -> str:
    """Grouped vertical bars: one group per label, one bar per series."""
    values = [v for _, vs in series for v in vs if v is not None]
    top = _nice_max(max(values, default=0.0))
    parts = _frame(title, labels, top, unit)
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    group = plot_w / max(len(labels), 1)
    width = group * 0.8 / max(len(series), 1)
    for s, (name, vs) in enumerate(series):
        colour = PALETTE[s % len(PALETTE)]
        for i, value in enumerate(vs):
            if value is None or value <= 0:
                continue
            h = plot_h * value / top
            x = _LEFT + group * i + group * 0.1 + width * s
            parts.append(
                f'<rect x="{x:.1f}" y="{_TOP + plot_h - h:.1f}" width="{width:.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{escape(name)}: {escape(_fmt(value))}{escape(unit)}</title></rect>'
            )
    return "".join([*parts, *_legend(series), "</svg>"])


def line_chart(title: str, labels: Sequence[str], series: Sequence[Series], unit: str = "") -> str:
    """One polyline per series over the labels; a gap where a value is missing."""
    values = [v for _, vs in series for v in vs if v is not None]
    top = _nice_max(max(values, default=0.0))
    parts = _frame(title, labels, top, unit)
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    step = plot_w / max(len(labels), 1)
    for s, (name, vs) in enumerate(series):
        colour = PALETTE[s % len(PALETTE)]
        runs: list[list[str]] = [[]]
        for i, value in enumerate(vs):
            if value is None:
                runs.append([])
                continue
            x, y = _LEFT + step * (i + 0.5), _TOP + plot_h - plot_h * value / top
            runs[-1].append(f"{x:.1f},{y:.1f}")
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}">'
                f"<title>{escape(name)}: {escape(_fmt(value))}{escape(unit)}</title></circle>"
            )
        for run in runs:
            if len(run) > 1:
                parts.append(
                    f'<polyline points="{" ".join(run)}" fill="none" stroke="{colour}" stroke-width="2"/>'
                )
    return "".join([*parts, *_legend(series), "</svg>"])


def hbar_chart(title: str, rows: Sequence[tuple[str, float, float | None]], unit: str = "%") -> str:
    """Horizontal bars from 0 to 100, one per row, with a target mark: (label, value, target)."""
    height = _TOP + 28 * max(len(rows), 1) + 8
    label_w, plot_w = 160, _W - 160 - _RIGHT - 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {height}" width="{_W}" height="{height}" '
        f'role="img" aria-label="{escape(title)}" font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<text x="8" y="14" font-weight="bold" font-size="12" fill="#111827">{escape(title)}</text>',
    ]
    for i, (label, value, target) in enumerate(rows):
        y = _TOP + 28 * i
        met = target is None or value >= target
        colour = PALETTE[1] if met else PALETTE[2]
        width = plot_w * max(0.0, min(value, 100.0)) / 100
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 14}" text-anchor="end" fill="#374151">{escape(label)}</text>'
        )
        parts.append(f'<rect x="{label_w}" y="{y}" width="{plot_w}" height="18" fill="#f3f4f6"/>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{width:.1f}" height="18" fill="{colour}"/>')
        parts.append(
            f'<text x="{label_w + plot_w + 6}" y="{y + 14}" fill="#374151">{value:.2f}{escape(unit)}</text>'
        )
        if target is not None:
            x = label_w + plot_w * target / 100
            mark = f'x1="{x:.1f}" y1="{y - 2}" x2="{x:.1f}" y2="{y + 20}"'
            parts.append(f'<line {mark} stroke="#111827" stroke-width="2"/>')
    return "".join([*parts, "</svg>"])
