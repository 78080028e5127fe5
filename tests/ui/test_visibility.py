"""Who sees what: a virtual key sees only its own requests and spend and cannot operate; signing in
needs a valid key; sessions are safe cookies that end on sign-out and on revocation."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from tests.ui.helpers import Fleet, admin_get, check_chart, new_page, shoot, sign_in


def test_a_virtual_key_sees_only_its_own_requests(tenant_page: Page, fleet: Fleet, screenshots: Path) -> None:
    page = tenant_page
    page.goto(fleet.ui + "/overview")
    expect(page.locator(".who-name")).to_have_text("analytics-service")
    expect(page.locator("nav")).not_to_contain_text("Audit log")
    check_chart(page, "throughput")
    expect(page.locator('[data-gauge="slo"]')).to_have_count(0)
    shoot(page, screenshots, "overview-virtual-key")

    page.goto(fleet.ui + "/requests")
    expect(page.locator('select[name="key_id"]')).to_have_count(0)
    ids = page.locator("#requests-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.requestId)")
    assert ids
    theirs = admin_get(fleet, f"/admin/requests?key_id={fleet.tenant_key_id}&limit=1000")["data"]
    assert set(ids) <= {r["request_id"] for r in theirs}
    data = page.request.get(fleet.ui + "/api/requests?key_id=master").json()
    assert {row["key_id"] for row in data["rows"]} == {fleet.tenant_key_id}

    [other] = admin_get(fleet, "/admin/requests?key_id=master&limit=1")["data"]
    response = page.goto(fleet.ui + f"/requests/{other['request_id']}")
    assert response is not None and response.status == 404

    page.goto(fleet.ui + "/spend")
    names = page.locator("#spend-by-key tbody tr").evaluate_all("rows => rows.map(r => r.dataset.name)")
    assert names == [fleet.tenant_key_id]


def test_a_virtual_key_cannot_operate(tenant_page: Page, fleet: Fleet) -> None:
    page = tenant_page
    page.goto(fleet.ui + "/deployments")
    check_chart(page, "by_deployment")
    expect(page.locator("tr[data-deployment]")).to_have_count(4)
    expect(page.locator("button[data-action]")).to_have_count(0)
    expect(page.locator("#recent-audit")).to_have_count(0)
    token = page.locator('input[name="csrf"]').first.input_value()
    response = page.request.post(
        fleet.ui + "/deployments/actions/drain",
        form={"target": "chat/sim-a/sim-small#0", "csrf": token},
        max_redirects=0,
    )
    assert response.status == 403
    assert not fleet.gateway.runtime.routing.disabled
    audit = page.goto(fleet.ui + "/audit")
    assert audit is not None and audit.status == 403
    assert page.request.get(fleet.ui + "/api/audit").status == 403


def test_sign_in_refuses_bad_keys_and_sets_a_safe_cookie(
    browser: Browser, fleet: Fleet, screenshots: Path
) -> None:
    context, page = new_page(browser)
    try:
        page.goto(fleet.ui + "/spend")
        expect(page).to_have_url(re.compile(r"/ui/login\?next=%2Fui%2Fspend"))
        shoot(page, screenshots, "sign-in")
        page.fill("#key", "sk-il-not-a-real-key")
        page.click("#sign-in")
        expect(page.locator(".alert.bad")).to_contain_text("unknown, revoked or expired")
        assert context.cookies() == []

        page.fill("#key", fleet.gateway.master_key)
        page.click("#sign-in")
        expect(page).to_have_url(re.compile(r"/ui/spend$"))
        [cookie] = context.cookies()
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
        assert fleet.gateway.master_key not in cookie["value"]

        page.click("#sign-out")
        expect(page).to_have_url(re.compile(r"/ui/login$"))
        page.goto(fleet.ui + "/overview")
        expect(page).to_have_url(re.compile(r"/ui/login"))
        assert page.request.get(fleet.ui + "/api/overview").status == 401
    finally:
        context.close()


def test_revoking_a_key_ends_its_sessions(browser: Browser, fleet: Fleet) -> None:
    key_id, key = fleet.gateway.create_key("short-lived")
    context, page = new_page(browser)
    try:
        sign_in(page, fleet, key)
        with fleet.gateway.admin() as admin:
            assert admin.delete(f"/admin/keys/{key_id}").status_code == 200
        page.goto(fleet.ui + "/requests")
        expect(page).to_have_url(re.compile(r"/ui/login"))
    finally:
        context.close()
