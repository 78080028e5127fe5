"""The dashboard under live mixed traffic (streamed and not, with retries and requests for an unknown
model): the time-to-first-token chart draws, errors are split by whose fault they were, and a
request's page shows where each attempt ran, why it went there, and the gateway's own time."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Locator, Page, expect

from interlock.ui.charts import PALETTE
from interlock.ui.format import ms_fine, pct
from tests.ui.helpers import Fleet, admin_get, check_chart, parse_number
from tests.ui.test_chart_drawing import COLOR_PIXELS

OUTCOME_COUNTS = ("errors", "judged", "upstream_error", "gateway_error", "client_error", "refused")


def box(locator: Locator) -> dict[str, float]:
    found = locator.bounding_box()
    assert found is not None, locator
    return dict(found)


def test_overview_draws_ttft_and_keeps_callers_mistakes_out_of_the_error_rate(
    master_page: Page, fleet: Fleet
) -> None:
    page = master_page
    page.goto(fleet.ui + "/overview")
    assert check_chart(page, "ttft") > 0
    assert page.evaluate(COLOR_PIXELS, ["ttft", PALETTE[0]]) > 20  # the p50 line itself, not the axes
    for chart in ("throughput", "ttft"):
        labels = (page.locator(f'[data-chart="{chart}"]').get_attribute("data-x-ticks") or "").split("|")
        assert len(labels) >= 2 and len(set(labels)) == len(labels), labels

    with fleet.quiet():
        page.reload()
        tile = page.locator('[data-tile="error-rate"]')
        counts = {
            name: parse_number(tile.locator(f'[data-count="{name}"]').inner_text()) for name in OUTCOME_COUNTS
        }
        # the traffic asks for an unknown model now and then: the callers' 404s are counted, apart
        assert counts["client_error"] > 0
        assert counts["errors"] == counts["upstream_error"] + counts["gateway_error"]
        rate = counts["errors"] / counts["judged"]
        expect(tile.locator(".tile-value")).to_have_text(pct(rate))
        log = admin_get(fleet, "/admin/requests?since=1h&limit=1000")["data"]
        unknown = [r for r in log if r["model"] == "gpt-unknown"]
        assert unknown and all((r["status"], r["outcome"]) == (404, "client_error") for r in unknown)


def test_models_page_shows_each_models_errors_refusals_and_caller_errors(
    master_page: Page, fleet: Fleet
) -> None:
    page = master_page
    with fleet.quiet():
        page.goto(fleet.ui + "/deployments")
        models = {m["name"]: m for m in page.request.get(fleet.ui + "/api/deployments").json()["models"]}
        for name in ("chat", "premium"):
            shown = page.locator(f'.model-card[data-model="{name}"] [data-outcomes]')
            outcomes = models[name]["outcomes"]
            assert outcomes["requests"] > 0
            expect(shown.locator('[data-field="error_rate"]')).to_have_text(pct(outcomes["error_rate"]))
            for field in ("client_error", "refused"):
                assert parse_number(shown.locator(f'[data-field="{field}"]').inner_text()) == outcomes[field]


def _streamed_answer(fleet: Fleet) -> dict[str, Any]:
    """A streamed request that succeeded, one that needed a retry when there is one."""
    records = admin_get(fleet, "/admin/requests?status=ok&limit=1000")["data"]
    streams = [r for r in records if r["stream"] and r["attempts"][-1].get("first_token_ms") is not None]
    return next((r for r in streams if len(r["attempts"]) > 1), streams[0])


def test_request_page_shows_the_stream_span_the_decisions_and_the_gateway_time(
    master_page: Page, fleet: Fleet
) -> None:
    page = master_page
    with fleet.quiet():
        record = _streamed_answer(fleet)
    page.goto(fleet.ui + f"/requests/{record['request_id']}")
    expect(page.locator("[data-outcome-class]")).to_have_attribute("data-outcome-class", "ok")

    # the winning attempt's bar runs from its start to the end of its stream, past its first token
    winner = page.locator(".wf-row").nth(len(record["attempts"]))
    bar, first_token = box(winner.locator(".wf-bar")), box(winner.locator(".wf-ft"))
    assert bar["x"] < first_token["x"] < bar["x"] + bar["width"]
    request_ttft = box(page.locator(".wf-request .wf-ttft"))
    assert bar["x"] + bar["width"] > request_ttft["x"] + 1
    attempt = record["attempts"][-1]
    assert attempt["latency_ms"] > attempt["first_token_ms"]
    if len(record["attempts"]) > 1:  # a retry starts where it really started: after the failure
        failed = box(page.locator(".wf-row").nth(1).locator(".wf-bar"))
        assert failed["x"] + failed["width"] <= bar["x"] + 1

    # why each attempt went where it went: one block per pick, a verdict per deployment
    decisions = page.locator("#decisions tbody[data-decision]")
    expect(decisions).to_have_count(len(record["decisions"]))
    for index, decision in enumerate(record["decisions"]):
        block = decisions.nth(index)
        expect(block).to_have_attribute("data-pick", decision["pick"] or "")
        shown = block.locator("tr[data-verdict]").evaluate_all("rows => rows.map(r => r.dataset.verdict)")
        assert shown == [c["verdict"] for c in decision["candidates"]]
        assert "picked" in shown

    # the gateway's own time on a stream: more than nothing, said precisely
    overhead = page.locator('[data-tile="overhead"] .tile-value')
    expect(overhead).to_have_text(ms_fine(record["overhead_ms"]))
    assert record["overhead_ms"] > 0 and parse_number(overhead.inner_text()) > 0


def test_request_explorer_filters_by_outcome_class(master_page: Page, fleet: Fleet) -> None:
    page = master_page
    page.goto(fleet.ui + "/requests?since=1h")
    page.select_option('select[name="status"]', "client_error")
    expect(page).to_have_url(re.compile(r"status=client_error"))
    classes = page.locator('#requests-table [data-field="status"]').evaluate_all(
        "cells => cells.map(c => c.dataset.outcomeClass)"
    )
    assert classes and set(classes) == {"client_error"}  # the traffic's requests for an unknown model
    page.select_option('select[name="status"]', "failures")
    expect(page).to_have_url(re.compile(r"status=failures"))
    failures = page.locator('#requests-table [data-field="status"]').evaluate_all(
        "cells => cells.map(c => c.dataset.outcomeClass)"
    )
    assert set(failures) <= {"upstream_error", "gateway_error"}
