"""The Campaigns page in a real browser: a month calendar read from Klaviyo through the
connection; a campaign scheduled from the page, then cancelled from its day."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import Page, expect

from kbridge.emulator.server import EmulatorServer
from kbridge.service.views import JobView
from kbridge.testing.plugin import http_client_for
from tests.integration.web.test_campaigns import SENDER, _audience

from .conftest import Dashboard, every_input_labelled, no_serious_violations, sign_in
from .test_dashboard import forge, seed_connection

pytestmark = pytest.mark.e2e


def finished(dashboard: Dashboard, kind: str) -> JobView:
    """The workspace's ``kind`` job once the worker is done with it (at most 60 s)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for job in dashboard.appdb.jobs(dashboard.workspace_a):
            if job.kind == kind and job.state in ("succeeded", "failed", "cancelled"):
                return job
        time.sleep(0.2)
    raise AssertionError(f"no {kind} job finished")


def test_schedule_a_campaign_then_cancel_it_from_the_calendar(
    page: Page, dashboard: Dashboard, emulator_factory: Callable[..., EmulatorServer]
) -> None:
    server = emulator_factory()  # its own account: campaigns are made here
    with http_client_for(server) as http:
        http.post("/_emulator/senders", json={"email": SENDER}).raise_for_status()
    # its own thread: Playwright's event loop runs in this one, and _audience starts another
    with ThreadPoolExecutor(1) as pool:
        audience = pool.submit(_audience, server).result()
    connection_id = seed_connection(dashboard, dashboard.workspace_a, server=server)
    sign_in(page, "admin@a.test")
    page.get_by_role("link", name="Campaigns").click()
    every_input_labelled(page)
    expect(page.locator("main")).to_contain_text("A cancel is permanent")

    page.get_by_label("Campaign name").fill("Winter sale")
    page.get_by_label("Subject").fill("The winter sale is on")
    page.get_by_label("List ids").fill(audience)
    page.get_by_label("From email").fill(SENDER)
    page.get_by_label("HTML body").fill("<html><body><p>Our sale starts now.</p></body></html>")
    page.get_by_label("Send at (UTC)").fill("2030-01-15T09:00")
    page.get_by_role("button", name="Schedule campaign").click()
    expect(page.get_by_role("status")).to_contain_text("Campaign queued")
    published = finished(dashboard, "campaign_publish")
    assert published.state == "succeeded", published.last_error

    page.goto(f"/campaigns?connection={connection_id}&month=2030-01")
    expect(page.get_by_role("heading", name="January 2030")).to_be_visible()
    day = page.locator('td[data-day="15"]')
    expect(day).to_contain_text("09:00 Winter sale")
    expect(day.locator(".state")).to_have_text("Scheduled")
    no_serious_violations(page)
    day.get_by_role("button", name="Cancel Winter sale for good").click()
    expect(page.get_by_role("status")).to_contain_text("A cancel is permanent")
    cancelled = finished(dashboard, "campaign_cancel")
    assert cancelled.state == "succeeded", cancelled.last_error

    page.reload()
    day = page.locator('td[data-day="15"]')
    expect(day.locator(".state")).to_have_text("Cancelled")
    expect(day.get_by_role("button")).to_have_count(0)  # nothing left to cancel
    page.get_by_role("link", name="Previous month").click()
    expect(page.get_by_role("heading", name="December 2029")).to_be_visible()


def test_a_viewer_sees_the_calendar_but_cannot_schedule_or_cancel(
    page: Page, dashboard: Dashboard, refusals: set[int]
) -> None:
    refusals.add(403)
    connection_id = seed_connection(dashboard, dashboard.workspace_a)
    sign_in(page, "viewer@a.test")
    page.get_by_role("link", name="Campaigns").click()
    expect(page.locator("table.calendar")).to_be_visible()
    expect(page.get_by_role("button", name="Schedule campaign")).to_have_count(0)
    expect(page.locator("main form[method=post]")).to_have_count(0)
    forge(page, "/campaigns/cancel", {"connection": connection_id, "campaign_id": "C1"})
    expect(page.get_by_role("heading", level=1)).to_have_text("Refused")
    assert dashboard.appdb.jobs(dashboard.workspace_a) == []
