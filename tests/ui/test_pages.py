"""Each dashboard page in a real browser, signed in with the master key, under live traffic: the
charts draw from real data and the tables show the numbers the admin API and /metrics report."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from interlock.ui.format import ms, pct, usd
from tests.ui.helpers import Fleet, admin_get, check_chart, metric_sum, parse_number, shoot


def test_overview_shows_live_traffic_slos_and_spend(
    master_page: Page, fleet: Fleet, screenshots: Path
) -> None:
    page = master_page
    page.goto(fleet.ui + "/overview")
    page.evaluate("document.body.dataset.marker = 'kept'")
    expect(page.locator("h1")).to_have_text("Overview")
    assert check_chart(page, "throughput") >= 5
    assert check_chart(page, "ttft") >= 5
    assert parse_number(page.locator('[data-tile="rps"] .tile-value').inner_text()) > 0
    for q in ("p50", "p95", "p99"):
        assert parse_number(page.locator(f'[data-ttft="{q}"]').inner_text()) > 0
    gauge = page.locator('[data-gauge="slo"]')
    expect(gauge.locator("svg.gauge")).to_be_visible()
    assert gauge.get_attribute("data-level") in ("good", "warn", "bad")
    shoot(page, screenshots, "overview")

    # live updates: the page polls every 5 s (and at once when it becomes visible again), swapping
    # the live region in without reloading the page
    expect(page.locator("#live")).to_have_attribute("data-refresh", "5.0")
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    expect(page.locator("#live")).to_have_attribute("data-updates", "1")
    expect(page.locator("#live-status .live-text")).to_contain_text("Live ·")
    assert page.evaluate("document.body.dataset.marker") == "kept"
    check_chart(page, "throughput")

    with fleet.quiet():
        page.reload()
        slo = {row["model"]: row for row in admin_get(fleet, "/admin/slo")["data"]}
        for model in ("chat", "premium"):
            row = page.locator(f'#slo-table tr[data-model="{model}"]')
            assert (
                parse_number(row.locator('[data-field="requests"]').inner_text())
                == slo[model]["requests"]
                > 0
            )
            expect(row.locator('[data-field="compliance"]')).to_have_text(pct(slo[model]["compliance"]))
            expect(row.locator('[data-field="ttft_p50"]')).to_have_text(ms(slo[model]["ttft_ms"]["p50"]))
        spent = metric_sum(fleet, "interlock_cost_usd_total")
        assert spent > 0
        expect(page.locator('[data-tile="spend-today"] .tile-value')).to_have_text(usd(spent))


def test_deployments_page_matches_the_admin_api(master_page: Page, fleet: Fleet) -> None:
    page = master_page
    page.goto(fleet.ui + "/deployments")
    expect(page.locator("h1")).to_have_text("Models & deployments")
    check_chart(page, "by_deployment")
    expect(page.locator('#pools-table tr[data-pool="gpu"]')).to_be_visible()
    expect(page.locator('button[data-action="drain"]')).to_have_count(4)  # operators see the buttons
    with fleet.quiet():
        page.reload()
        deployments = admin_get(fleet, "/admin/deployments")["data"]
        assert len(deployments) == 4
        for d in deployments:
            row = page.locator(f'tr[data-deployment="{d["id"]}"]')
            assert parse_number(row.locator('[data-field="requests"]').inner_text()) == d["requests"] > 0
            assert parse_number(row.locator('[data-field="failures"]').inner_text()) == d["failures"]
            assert row.get_attribute("data-state") == d["state"]


def test_spend_page_matches_metrics_and_the_request_log(
    master_page: Page, fleet: Fleet, screenshots: Path
) -> None:
    page = master_page
    page.goto(fleet.ui + "/spend")
    check_chart(page, "over_time")
    expect(page.locator('#spend-by-model tr[data-name="premium"]')).to_be_visible()
    with fleet.quiet():
        page.reload()
        requests_total = metric_sum(fleet, "interlock_requests_total")
        assert (
            parse_number(page.locator('[data-tile="spend-requests"] .tile-value').inner_text())
            == requests_total
        )
        expect(page.locator('[data-tile="spend-total"] .tile-value')).to_have_text(
            usd(metric_sum(fleet, "interlock_cost_usd_total"))
        )
        records = admin_get(fleet, f"/admin/requests?key_id={fleet.tenant_key_id}&limit=1000")["data"]
        row = page.locator(f'#spend-by-key tr[data-name="{fleet.tenant_key_id}"]')
        expect(row).to_contain_text("analytics-service")
        assert parse_number(row.locator('[data-field="requests"]').inner_text()) == len(records) > 0
        shown = float(row.locator('[data-field="cost"]').get_attribute("data-value") or 0)
        assert shown == pytest.approx(sum(r["cost"] for r in records), rel=1e-9)
    shoot(page, screenshots, "spend")


def test_request_explorer_lists_the_log_and_opens_a_waterfall(
    master_page: Page, fleet: Fleet, screenshots: Path
) -> None:
    page = master_page
    page.goto(fleet.ui + "/requests")
    check_chart(page, "latency")
    with fleet.quiet():
        page.reload()
        newest = admin_get(fleet, "/admin/requests?limit=50")["data"]
        rows = page.locator("#requests-table tbody tr")
        assert rows.evaluate_all("rows => rows.map(r => r.dataset.requestId)") == [
            r["request_id"] for r in newest
        ]
        latency = rows.first.locator('[data-field="latency"]').get_attribute("data-value")
        assert float(latency or 0) == pytest.approx(newest[0]["latency_ms"])
        shoot(page, screenshots, "requests")

    page.select_option('select[name="status"]', "error")
    expect(page).to_have_url(re.compile(r"status=error"))
    statuses = page.locator("#requests-table .status").all_inner_texts()
    assert statuses and all(int(s) >= 400 for s in statuses)

    succeeded = admin_get(fleet, "/admin/requests?status=ok&limit=1000")["data"]
    fallbacks = [r for r in succeeded if len(r["attempts"]) > 1]
    fallback = next((r for r in fallbacks if r["stream"]), fallbacks[0])  # a stream shows its TTFT too
    page.goto(fleet.ui + f"/requests/{fallback['request_id']}")
    waterfall = page.locator("#waterfall")
    expect(waterfall).to_have_attribute("data-rows", str(len(fallback["attempts"])))
    bars = waterfall.locator(".wf-row .wf-bar")
    expect(bars).to_have_count(len(fallback["attempts"]) + 1)
    for index in range(bars.count()):
        box = bars.nth(index).bounding_box()
        assert box is not None and box["width"] >= 2
    outcomes = waterfall.locator(".wf-row").evaluate_all("rows => rows.map(r => r.dataset.outcome)")
    assert outcomes == ["ok", *[a["outcome"] for a in fallback["attempts"]]]
    assert outcomes[-1] == "ok" and outcomes[1] != "ok"
    shoot(page, screenshots, "request-detail")


def test_unknown_pages_and_items_are_not_found(master_page: Page, fleet: Fleet) -> None:
    response = master_page.goto(fleet.ui + "/requests/no-such-request")
    assert response is not None and response.status == 404
    response = master_page.goto(fleet.ui + "/nonexistent")
    assert response is not None and response.status == 404
    assert master_page.request.get(fleet.ui + "/api/nonexistent").status == 404
