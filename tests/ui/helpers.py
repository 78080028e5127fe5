"""Browser helpers for the dashboard tests: sign in, check a chart really drew, read numbers."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, BrowserContext, Page, StorageState, ViewportSize, expect
from prometheus_client.parser import text_string_to_metric_families

from interlock.sim import SimServerThread
from tests.gateway_harness import Gateway
from tests.ui.traffic import TrafficGenerator

__all__ = [
    "CHROMIUM_ARGS",
    "VIEWPORT",
    "Fleet",
    "admin_get",
    "check_chart",
    "metric_sum",
    "new_page",
    "parse_number",
    "shoot",
    "sign_in",
]

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT: ViewportSize = {"width": 1366, "height": 768}
"""A common laptop screen: every page must read well at this size."""

_PAINTED_PIXELS = """(el) => {
  const canvas = el.querySelector('canvas');
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i]) painted++;
  return painted;
}"""


@dataclass
class Fleet:
    """The gateway under test, its two simulators, the traffic and the virtual key."""

    gateway: Gateway
    sim_a: SimServerThread
    sim_b: SimServerThread
    traffic: TrafficGenerator
    tenant_key_id: str
    tenant_key: str

    @property
    def ui(self) -> str:
        return self.gateway.url + "/ui"

    def quiet(self) -> contextlib.AbstractContextManager[None]:
        """Traffic paused, and every finished request written to the request log."""
        return self.traffic.paused(self._flushed)

    def _flushed(self) -> bool:
        writer = self.gateway.runtime.writer
        return writer is None or writer.stats.pending == 0


def new_page(browser: Browser, state: StorageState | None = None) -> tuple[BrowserContext, Page]:
    """A fresh browser context (own cookies) at laptop size, optionally already signed in."""
    context = browser.new_context(viewport=VIEWPORT, timezone_id="UTC", storage_state=state)
    return context, context.new_page()


def sign_in(page: Page, fleet: Fleet, key: str, path: str = "/overview") -> None:
    page.goto(fleet.ui + path)
    expect(page).to_have_url(re.compile(r"/ui/login\?next="))
    page.fill("#key", key)
    page.click("#sign-in")
    expect(page).to_have_url(re.compile(re.escape(path) + r"$"))


def check_chart(page: Page, chart_id: str) -> int:
    """The chart drew on a canvas of real size, from data with points; returns the point count."""
    chart = page.locator(f'[data-chart="{chart_id}"]')
    expect(chart).to_have_attribute("data-rendered", "1")
    box = chart.locator("canvas").bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 80, box
    assert chart.evaluate(_PAINTED_PIXELS) > 500
    points = int(chart.get_attribute("data-points") or 0)
    assert points > 0, f"chart {chart_id} has no data points"
    return points


def parse_number(text: str) -> float:
    """``1,234`` → 1234.0; ``$0.0421`` → 0.0421; ``12.5 %`` → 12.5."""
    return float(re.sub(r"[^0-9.\-]", "", text))


def admin_get(fleet: Fleet, path: str) -> Any:
    with fleet.gateway.admin() as client:
        response = client.get(path)
        response.raise_for_status()
        return response.json()


def metric_sum(fleet: Fleet, name: str) -> float:
    text = httpx.get(fleet.gateway.url + "/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


def shoot(page: Page, directory: Path, name: str) -> None:
    """A full-page PNG of ``page`` as ``directory/name.png`` (see the ``screenshots`` fixture)."""
    path = directory / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n"), f"{path} is not a PNG"
