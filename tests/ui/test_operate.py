"""Operator actions from the dashboard: drain a deployment (traffic then avoids it), enable it again,
every change audited — from the page and from the admin API — and forged requests refused."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

from playwright.sync_api import Page, expect

from tests.ui.helpers import Fleet, shoot

SIM_B_CHAT = "chat/sim-b/sim-small#1"


def _answered_by(fleet: Fleet, count: int = 10) -> set[str]:
    """Who answered ``count`` probes sent while the background traffic holds still, so that the
    round-robin alternates between the two chat deployments for the probes alone."""
    client = fleet.gateway.openai()
    answered = set()
    with fleet.quiet():
        for n in range(count):
            raw = client.chat.completions.with_raw_response.create(
                model="chat", messages=[{"role": "user", "content": f"probe {n}"}], max_tokens=4
            )
            answered.add(raw.headers["x-interlock-deployment"])
    return answered


def test_drain_from_the_page_moves_traffic_away_and_is_audited(
    master_page: Page, fleet: Fleet, screenshots: Path
) -> None:
    page = master_page
    page.goto(fleet.ui + "/deployments")
    assert SIM_B_CHAT in _answered_by(fleet)  # round-robin: sim-b serves before the drain
    row = page.locator(f'tr[data-deployment="{SIM_B_CHAT}"]')
    page.once("dialog", lambda dialog: dialog.accept())
    row.locator('button[data-action="drain"]').click()

    expect(page.locator("#notice")).to_contain_text(f"Draining {SIM_B_CHAT}")
    expect(row).to_have_attribute("data-state", re.compile("draining|disabled"))
    expect(row.locator('button[data-action="enable"]')).to_be_visible()
    assert SIM_B_CHAT in fleet.gateway.runtime.routing.disabled
    assert _answered_by(fleet) == {"chat/sim-a/sim-small#0"}

    audit = page.locator("#recent-audit tbody tr").first
    expect(audit).to_contain_text("drain")
    expect(audit).to_contain_text(SIM_B_CHAT)
    expect(audit).to_contain_text("ui")
    shoot(page, screenshots, "deployments")

    page.click("text=full audit log →")
    entry = page.locator(f'#audit-table tr[data-action="drain"][data-target="{SIM_B_CHAT}"]').first
    expect(entry).to_contain_text("master")

    page.goto(fleet.ui + "/deployments")
    page.locator(f'tr[data-deployment="{SIM_B_CHAT}"] button[data-action="enable"]').click()
    expect(page.locator("#notice")).to_contain_text(f"Enabled {SIM_B_CHAT}")
    assert SIM_B_CHAT not in fleet.gateway.runtime.routing.disabled
    assert SIM_B_CHAT in _answered_by(fleet)


def test_a_dismissed_confirmation_changes_nothing(master_page: Page, fleet: Fleet) -> None:
    page = master_page
    page.goto(fleet.ui + "/deployments")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.locator(f'tr[data-deployment="{SIM_B_CHAT}"] button[data-action="disable"]').click()
    expect(page.locator(f'tr[data-deployment="{SIM_B_CHAT}"] button[data-action="disable"]')).to_be_visible()
    assert SIM_B_CHAT not in fleet.gateway.runtime.routing.disabled


def test_admin_api_changes_are_audited_too(master_page: Page, fleet: Fleet, screenshots: Path) -> None:
    with fleet.gateway.admin() as admin:
        for action in ("disable", "enable"):
            response = admin.post(f"/admin/deployments/{quote(SIM_B_CHAT, safe='/')}/{action}")
            assert response.status_code == 200
            assert response.json()["audited"] is True
    page = master_page
    page.goto(fleet.ui + "/audit")
    rows = page.locator("#audit-table tbody tr")
    expect(rows.first).to_have_attribute("data-action", "enable")
    expect(rows.first).to_contain_text("api")
    expect(rows.nth(1)).to_have_attribute("data-action", "disable")
    shoot(page, screenshots, "audit")


def test_forged_action_requests_are_refused(master_page: Page, fleet: Fleet) -> None:
    page = master_page
    page.goto(fleet.ui + "/deployments")
    url = fleet.ui + "/deployments/actions/disable"
    token = page.locator('input[name="csrf"]').first.input_value()
    no_token = page.request.post(url, form={"target": SIM_B_CHAT}, max_redirects=0)
    assert no_token.status == 403
    wrong = page.request.post(url, form={"target": SIM_B_CHAT, "csrf": token[:-2] + "xx"}, max_redirects=0)
    assert wrong.status == 403
    other_site = page.request.post(
        url,
        form={"target": SIM_B_CHAT, "csrf": token},
        headers={"origin": "http://evil.example"},
        max_redirects=0,
    )
    assert other_site.status == 403
    assert SIM_B_CHAT not in fleet.gateway.runtime.routing.disabled
    unknown = page.request.post(url, form={"target": "chat/nope#9", "csrf": token}, max_redirects=0)
    assert unknown.status == 404
