"""The Analytics page's churn top-risk table in a real browser: "not synced yet" before the
first sync, then the profiles most likely to churn with their scores and reasons."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from kbridge.analytics import churn
from kbridge.service.connection_store import SqlConnectionStore
from kbridge.warehouse import open_warehouse

from .conftest import Dashboard, no_serious_violations, sign_in
from .test_analytics import finished
from .test_dashboard import connect

pytestmark = pytest.mark.e2e


def test_the_churn_table_says_not_synced_then_shows_the_top_risk(
    page: Page, dashboard: Dashboard
) -> None:
    sign_in(page, "admin@a.test")
    connect(page, dashboard, "shop", dashboard.emulator.api_key)
    expect(page.get_by_role("status")).to_have_text("Connected.")
    page.get_by_role("link", name="Analytics").click()
    card = page.locator("section", has=page.get_by_role("heading", name="Churn: top risk"))
    expect(card).to_contain_text("Not synced yet")
    expect(card.get_by_role("table")).to_have_count(0)

    page.get_by_role("link", name="Connections").click()
    page.get_by_role("link", name="shop").click()
    page.get_by_role("button", name="Start a sync").click()
    synced = finished(dashboard, "sync")
    assert synced.state == "succeeded", synced.last_error

    page.get_by_role("link", name="Analytics").click()
    table = card.get_by_role("table", name="Churn top risk")
    expect(table).to_be_visible()
    no_serious_violations(page)
    # the page's first row is the analysis' own most-at-risk engaged profile
    store = SqlConnectionStore(
        dashboard.appdb.engine, dashboard.workspace_a, master_key=dashboard.master_key
    )
    record = store.get("shop")
    # the page itself does not wait for the model: the table comes in after it shows
    served = page.request.get(f"/analytics?connection={record.id}")
    assert 'aria-label="Churn top risk"' not in served.text()
    url = store.settings("shop").warehouse
    assert url is not None
    warehouse = open_warehouse(url)
    try:
        result = churn(warehouse, record.account_id)
    finally:
        warehouse.close()
    engaged = [r for r in result.profiles.records() if r["days_since_activity"] is not None]
    top = engaged[0]
    first = table.get_by_role("row").nth(1)
    expect(first.get_by_role("cell").nth(0)).to_have_text(str(top["email"] or top["profile_id"]))
    expect(first.get_by_role("cell").nth(1)).to_have_text(
        f"{100 * float(top['churn_probability']):.0f} %"
    )
    expect(first.get_by_role("cell").nth(2)).not_to_be_empty()
    expect(table.get_by_role("row")).to_have_count(1 + min(20, len(engaged)))
