"""A connection's schedules (added, listed, removed) and OAuth connect through the emulator's
consent page, in a real browser."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import Page, expect

from kbridge.emulator.server import EmulatorServer
from kbridge.service.connection_store import SqlConnectionStore

from .conftest import Dashboard, every_input_labelled, no_serious_violations, sign_in
from .test_dashboard import forge, seed_connection

pytestmark = pytest.mark.e2e


def add_schedule(page: Page, job: str, *, daily_at: str = "", cron: str = "", tz: str = "") -> None:
    page.get_by_label("Job", exact=True).select_option(label=job)
    page.get_by_label("Daily at", exact=True).fill(daily_at)
    page.get_by_label("Cron", exact=True).fill(cron)
    if tz:
        page.get_by_label("Time zone", exact=True).fill(tz)
    page.get_by_role("button", name="Add schedule").click()


def test_add_list_and_remove_schedules(
    page: Page, dashboard: Dashboard, refusals: set[int]
) -> None:
    refusals.add(422)
    connection_id = seed_connection(dashboard, dashboard.workspace_a)
    sign_in(page, "admin@a.test")
    page.get_by_role("link", name="shop").click()
    every_input_labelled(page)
    expect(page.locator("main")).to_contain_text("Nothing repeats for this connection.")

    add_schedule(page, "Sync", daily_at="06:30", tz="Europe/Berlin")
    expect(page.get_by_role("status")).to_have_text("Schedule added.")
    add_schedule(page, "HTML report", cron="0 */6 * * *")
    expect(page.get_by_role("status")).to_have_text("Schedule added.")
    rows = page.get_by_role("table", name="Schedules").locator("tbody tr")
    expect(rows).to_have_count(2)
    no_serious_violations(page)
    expect(rows.nth(0)).to_contain_text("daily at 06:30")
    expect(rows.nth(0)).to_contain_text("Europe/Berlin")
    expect(rows.nth(1)).to_contain_text("cron 0 */6 * * *")
    expect(rows.nth(1)).to_contain_text("HTML report")
    # both, or a cron that is not one, are refused naming the field
    add_schedule(page, "Sync", daily_at="07:00", cron="0 7 * * *")
    expect(page.get_by_role("alert")).to_contain_text("Cron:")
    add_schedule(page, "Sync", cron="every tuesday")
    expect(page.get_by_role("alert")).to_contain_text("Cron:")

    rows.nth(0).get_by_role("button", name="Remove the Sync schedule daily at 06:30").click()
    expect(page.get_by_role("status")).to_have_text("Schedule removed.")
    expect(rows).to_have_count(1)
    (left,) = dashboard.appdb.schedules(dashboard.workspace_a)
    assert (left.connection_id, left.kind, left.cron) == (connection_id, "report", "0 */6 * * *")


def test_a_viewer_sees_schedules_but_cannot_add_or_remove_them(
    page: Page, dashboard: Dashboard, refusals: set[int]
) -> None:
    refusals.add(403)
    connection_id = seed_connection(dashboard, dashboard.workspace_a)
    made = dashboard.appdb.create_schedule(
        dashboard.workspace_a, connection_id, "sync", daily_at="05:00", cron=None, timezone="UTC"
    )
    sign_in(page, "viewer@a.test")
    page.get_by_role("link", name="shop").click()
    expect(page.get_by_role("table", name="Schedules")).to_contain_text("daily at 05:00")
    expect(page.locator("main button")).to_have_count(0)
    forge(page, f"/connections/{connection_id}/schedules/{made.id}/remove", {})
    expect(page.get_by_role("heading", level=1)).to_have_text("Refused")
    forge(page, f"/connections/{connection_id}/schedules", {"daily_at": "01:00"})
    expect(page.get_by_role("heading", level=1)).to_have_text("Refused")
    assert [s.id for s in dashboard.appdb.schedules(dashboard.workspace_a)] == [made.id]


def test_oauth_connect_through_the_consent_page(
    page: Page, dashboard: Dashboard, emulator_factory: Callable[..., EmulatorServer]
) -> None:
    server = emulator_factory(oauth_consent="page")
    registered = httpx.post(
        f"{server.base_url}/_emulator/oauth-clients",
        json={"redirect_uris": [dashboard.base_url + "/connections/oauth/callback"]},
        timeout=30.0,
    )
    assert registered.status_code == 201, registered.text
    app = registered.json()
    # the emulator's consent page stands in for Klaviyo's, which has an icon; the emulator
    # has none, and the browser's 404 for it would count as this flow's console error
    page.route(f"{server.base_url}/favicon.ico", lambda route: route.fulfill(status=204))
    sign_in(page, "admin@a.test")
    page.get_by_label("Connection name").fill("app")
    page.get_by_label("Client ID").fill(app["client_id"])
    page.get_by_label("Client secret").fill(app["client_secret"])
    page.get_by_text("Another host", exact=True).click()
    page.get_by_label("OAuth host URL").fill(server.base_url)
    page.get_by_role("button", name="Continue to consent").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Consent in Klaviyo")
    expect(page.locator("main")).to_contain_text("data-privacy:write")
    no_serious_violations(page)
    page.get_by_role("link", name="Continue to Klaviyo").click()
    # the emulator's consent page, as Klaviyo's would be
    expect(page.get_by_role("heading", level=1)).to_have_text("Authorize application")
    page.get_by_role("button", name="Allow").click()

    expect(page.get_by_role("status")).to_have_text("Connected.")
    expect(page.get_by_role("heading", level=1)).to_have_text("app")
    page.get_by_role("link", name="Connections").click()
    expect(page.get_by_role("link", name="app")).to_be_visible()
    store = SqlConnectionStore(
        dashboard.appdb.engine, dashboard.workspace_a, master_key=dashboard.master_key
    )
    (record,) = store.list()
    assert record.kind == "oauth"
    assert store.secrets("app")["refresh_token"]
