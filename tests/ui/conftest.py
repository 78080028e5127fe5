"""Fixtures for the dashboard tests: a gateway under simulated traffic, and Debian's Chromium.

One gateway serves the whole package (starting one, and letting traffic build up history, is the slow
part): two simulators behind the models ``chat`` (round-robin over both), ``premium`` and ``embed``,
a master key and a virtual key, and three threads of traffic. The browser is Debian's ``chromium``
driven by Playwright; it is never downloaded. Signing in happens once per key; each test gets a
fresh browser context holding that session.

The background traffic must meet no error but the one it expects (a 404 for an unknown model): a test
during which a request failed fails too, naming the request.

Screenshots of the pages go to a temporary directory, or, with ``INTERLOCK_SCREENSHOTS=1`` in the
environment, to docs/screenshots (the images docs/observability.md shows).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, StorageState, sync_playwright

from interlock.sim import SimConfig, SimServerThread
from tests.gateway_harness import MASTER_KEY, running_gateway
from tests.ui.helpers import CHROMIUM_ARGS, Fleet, new_page, sign_in
from tests.ui.traffic import TrafficGenerator

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SCREENSHOTS_ENV = "INTERLOCK_SCREENSHOTS"
"""Set to ``1`` to write the screenshots to :data:`SCREENSHOTS`, refreshing the documentation's."""
WARM_UP_S = 6.0
"""Traffic runs this long before the first page is opened, so the charts have some history."""

SIM_A = SimConfig(
    name="sim-a", ttft_ms=12, tpot_ms=0.8, prefill_ms_per_token=0.0, seed=1, output_tokens_max=40
)
SIM_B = SimConfig(
    name="sim-b", ttft_ms=38, tpot_ms=1.2, prefill_ms_per_token=0.0, seed=2, output_tokens_max=40
)


def fleet_config(sim_a: str, sim_b: str, tmp: Path) -> str:
    return f"""
master_key: {MASTER_KEY}
store: sqlite:///{tmp}/interlock.db
pools:
  cpu: {{labels: {{hardware: cpu}}}}
  gpu: {{labels: {{hardware: gpu}}}}
providers:
  sim-a: {{kind: openai, base_url: {sim_a}}}
  sim-b: {{kind: openai, base_url: {sim_b}}}
models:
  chat:
    routing: {{strategy: round-robin}}
    slo: {{ttft_ms: 75, target: 0.95}}
    deployments:
      - {{provider: sim-a, model: sim-small, pool: cpu, price: {{input: 0.5, output: 1.5}}}}
      - {{provider: sim-b, model: sim-small, pool: gpu, price: {{input: 2.0, output: 6.0}}}}
  premium:
    fallbacks: [chat]
    slo: {{ttft_ms: 400, target: 0.95}}
    deployments:
      - {{provider: sim-b, model: sim-large, pool: gpu, price: {{input: 3.0, output: 15.0}}}}
  embed:
    kind: embeddings
    deployments:
      - {{provider: sim-a, model: sim-embed, pool: cpu, price: {{input: 0.1}}}}
"""


@pytest.fixture(scope="package")
def chromium_path() -> str:
    """Debian's Chromium; the browser tests skip, saying why, only where it is truly absent."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is absent: install Debian's chromium (apt-get install -y chromium; "
            "`make test` does it) to run the dashboard's browser tests"
        )
    return str(CHROMIUM)


@pytest.fixture(scope="package")
def fleet(tmp_path_factory: pytest.TempPathFactory, chromium_path: str) -> Iterator[Fleet]:
    tmp = tmp_path_factory.mktemp("ui")
    with SimServerThread(SIM_A) as sim_a, SimServerThread(SIM_B) as sim_b:
        # sim-b sheds a few requests: the gateway retries them on sim-a, which makes waterfalls
        sim_b.set_faults(error_rate=0.12, error_status=503)
        with running_gateway(fleet_config(sim_a.base_url, sim_b.base_url, tmp)) as gateway:
            tenant_id, tenant_key = gateway.create_key("analytics-service")
            traffic = TrafficGenerator(gateway.openai, lambda: gateway.openai(tenant_key))
            traffic.start()
            try:
                time.sleep(WARM_UP_S)
                if traffic.failures or not traffic.sent:
                    pytest.fail(f"the warm-up traffic failed ({traffic.sent} sent): {traffic.failures}")
                yield Fleet(gateway, sim_a, sim_b, traffic, tenant_id, tenant_key)
            finally:
                traffic.stop()
            assert traffic.failures == [], traffic.failures


@pytest.fixture(scope="package")
def browser(chromium_path: str) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(autouse=True)
def traffic_meets_no_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test on the fleet fails when a background request failed while it ran."""
    if "fleet" not in request.fixturenames:
        yield
        return
    fleet: Fleet = request.getfixturevalue("fleet")
    mark = len(fleet.traffic.failures)
    yield
    failures = fleet.traffic.failures_since(mark)
    assert failures == [], f"background traffic failed during this test: {failures}"
    assert fleet.traffic.running(), "a background traffic thread died"


@pytest.fixture(scope="package")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where :func:`tests.ui.helpers.shoot` writes: docs/screenshots only when asked."""
    if os.environ.get(SCREENSHOTS_ENV) == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return SCREENSHOTS
    return tmp_path_factory.mktemp("screenshots")


def _signed_in_state(browser: Browser, fleet: Fleet, key: str) -> StorageState:
    context, page = new_page(browser)
    try:
        sign_in(page, fleet, key)
        return context.storage_state()
    finally:
        context.close()


@pytest.fixture(scope="package")
def master_state(browser: Browser, fleet: Fleet) -> StorageState:
    return _signed_in_state(browser, fleet, fleet.gateway.master_key)


@pytest.fixture(scope="package")
def tenant_state(browser: Browser, fleet: Fleet) -> StorageState:
    return _signed_in_state(browser, fleet, fleet.tenant_key)


@pytest.fixture
def master_page(browser: Browser, master_state: StorageState) -> Iterator[Page]:
    """A page in a new context signed in with the master key (nothing loaded yet)."""
    context, page = new_page(browser, master_state)
    yield page
    context.close()


@pytest.fixture
def tenant_page(browser: Browser, tenant_state: StorageState) -> Iterator[Page]:
    """A page in a new context signed in with the virtual key ``analytics-service``."""
    context, page = new_page(browser, tenant_state)
    yield page
    context.close()
