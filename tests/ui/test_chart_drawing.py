"""How the dashboard's script draws charts, in Chromium, from specs of known shape: a lone value is
drawn (not lost between empty buckets), and time axes read as distinct, sensible labels for every
range from a fraction of a second to more than a year."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from interlock.ui.charts import PALETTE
from tests.ui.helpers import new_page

STATIC = Path(__file__).resolve().parents[2] / "src" / "interlock" / "ui" / "static"
NOW = 1_796_523_295.0
COLOR_PIXELS = """([id, hex]) => {
  const canvas = document.querySelector(`[data-chart="${id}"] canvas`);
  const rgb = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let found = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] > 200 && rgb.every((c, k) => Math.abs(data[i + k] - c) < 40)) found++;
  }
  return found;
}"""
SPANS: dict[str, tuple[float, str]] = {
    # span of the data in seconds, and the pattern every label must match
    "lone": (0.0, r"\d\d:\d\d:\d\d"),
    "subsecond": (0.3, r"\d\d:\d\d:\d\d\.\d{1,2}"),
    "seconds": (45.0, r"\d\d:\d\d:\d\d"),
    "quarter-hour": (900.0, r"\d\d:\d\d"),
    "hours": (6 * 3600.0, r"\d\d:\d\d|[A-Z][a-z]{2} \d{1,2}"),
    "week": (7 * 86400.0, r"[A-Z][a-z]{2} \d{1,2}"),
    "year": (400 * 86400.0, r"[A-Z][a-z]{2} \d{4}|\d{4}"),
}


def spec(kind: str, xs: list[float], values: list[float | None]) -> dict[str, Any]:
    series = [{"label": "p50", "color": PALETTE[0], "values": values}]
    points = sum(1 for v in values if v is not None)
    return {"kind": kind, "unit": "ms", "height": 200, "x": xs, "series": series, "points": points}


def evenly(span: float, count: int) -> list[float]:
    if count == 1:
        return [NOW]
    return [NOW - span + span * i / (count - 1) for i in range(count)]


def harness(directory: Path, specs: dict[str, dict[str, Any]]) -> Path:
    """A page holding the charts, drawn by the dashboard's own script and uPlot from the source tree."""
    charts = "".join(
        f'<div class="card" style="width: 560px"><div class="chart" data-chart="{name}"></div>'
        f'<script type="application/json" data-chart-spec="{name}">{json.dumps(s)}</script></div>'
        for name, s in specs.items()
    )
    page = directory / "charts.html"
    page.write_text(
        f'<!doctype html><html><head><link rel="stylesheet" href="{(STATIC / "app.css").as_uri()}"></head>'
        f'<body>{charts}<script src="{(STATIC / "uPlot.iife.min.js").as_uri()}"></script>'
        f'<script src="{(STATIC / "dashboard.js").as_uri()}"></script></body></html>'
    )
    return page


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context, page = new_page(browser)
    yield page
    context.close()


def test_a_lone_value_between_empty_buckets_is_drawn(page: Page, tmp_path: Path) -> None:
    xs = evenly(900.0, 90)
    lone: list[float | None] = [None] * 90
    lone[40] = 42.0
    specs = {
        "lone": spec("line", xs, lone),
        "area": spec("area", xs, lone),
        "empty": spec("line", xs, [None] * 90),
        "two": spec("line", xs, [*([None] * 40), 40.0, 44.0, *([None] * 48)]),
    }
    page.goto(harness(tmp_path, specs).as_uri())
    for name in specs:
        page.wait_for_selector(f'[data-chart="{name}"][data-rendered="1"] canvas')
    drawn = {name: page.evaluate(COLOR_PIXELS, [name, PALETTE[0]]) for name in specs}
    assert drawn["empty"] == 0  # the colour appears only where the series is drawn
    assert drawn["lone"] > 20 and drawn["area"] > 20  # a dot, where there used to be nothing
    assert drawn["two"] > 5  # two neighbours: a short line between them


def test_time_axis_labels_are_distinct_and_fit_the_range(page: Page, tmp_path: Path) -> None:
    specs = {}
    for name, (span, _) in SPANS.items():
        count = 1 if span == 0 else 60
        specs[name] = spec("line", evenly(span, count), [float(i % 7) for i in range(count)])
    specs["bars"] = spec("bars", evenly(3600.0, 60), [1.0] * 60)
    patterns = {name: pattern for name, (_, pattern) in SPANS.items()} | {"bars": r"\d\d:\d\d"}
    page.goto(harness(tmp_path, specs).as_uri())
    for name, pattern in patterns.items():
        chart = page.locator(f'[data-chart="{name}"]')
        chart.locator("canvas").wait_for()
        labels = (chart.get_attribute("data-x-ticks") or "").split("|")
        assert len(labels) >= 2, (name, labels)
        assert len(set(labels)) == len(labels), (name, labels)
        assert all(re.fullmatch(pattern, label) for label in labels), (name, labels)
