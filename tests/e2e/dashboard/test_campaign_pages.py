"""The campaign pages beyond the month calendar, in a real browser: the week view; a
campaign made from a template and lists (a draft, then scheduled); a revert back to a
draft; each campaign's performance read from the synced warehouse; a viewer refused."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from kbridge.analytics import campaign_performance
from kbridge.api import AsyncClient
from kbridge.campaigns import PublishRequest, publish
from kbridge.emulator.server import EmulatorServer
from kbridge.service.connection_store import SqlConnectionStore
from kbridge.service.jobs import default_warehouse_url
from kbridge.service.users import add_user
from kbridge.service.views import JobView
from kbridge.testing.plugin import http_client_for
from kbridge.warehouse import open_warehouse
from tests.integration.web.test_campaigns import SENDER, _audience

from .conftest import PASSWORD, Dashboard, every_input_labelled, no_serious_violations, sign_in
from .test_dashboard import forge, seed_connection

pytestmark = pytest.mark.e2e

HTML = "<html><body><p>Spring is here.</p></body></html>"


def settled(dashboard: Dashboard, kind: str, count: int = 1) -> JobView:
    """The newest ``kind`` job once ``count`` of them are done (at most 120 s)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        jobs = [j for j in dashboard.appdb.jobs(dashboard.workspace_a) if j.kind == kind]
        done = [j for j in jobs if j.state in ("succeeded", "failed", "cancelled")]
        if len(jobs) >= count and len(done) == len(jobs):
            return jobs[0]  # newest first
        time.sleep(0.2)
    raise AssertionError(f"no {count} {kind} job(s) finished")


@dataclass
class Account:
    server: EmulatorServer
    list_id: str
    template_id: str


def account(emulator_factory: Callable[..., EmulatorServer]) -> Account:
    """A fresh emulator account with a verified sender, a list of subscribers and a template."""
    server = emulator_factory()
    with http_client_for(server) as http:
        http.post("/_emulator/senders", json={"email": SENDER}).raise_for_status()

    async def template() -> str:
        async with AsyncClient(server.api_key, base_url=server.base_url) as client:
            made = await client.templates.create_template(name="Spring template", html=HTML)
            assert made.id is not None
            return made.id

    # its own thread: Playwright's event loop runs in this one
    with ThreadPoolExecutor(1) as pool:
        list_id = pool.submit(_audience, server).result()
        template_id = pool.submit(asyncio.run, template()).result()
    return Account(server, list_id, template_id)


def operator(dashboard: Dashboard) -> str:
    add_user(dashboard.appdb, "a", "operator@a.test", PASSWORD, "operator")
    return "operator@a.test"


def test_the_week_view_shows_scheduled_and_sent_campaigns_with_their_time(
    page: Page, dashboard: Dashboard, emulator_factory: Callable[..., EmulatorServer]
) -> None:
    acct = account(emulator_factory)
    request = PublishRequest(
        name="Winter sale",
        included=[acct.list_id],
        subject="The winter sale is on",
        from_email=SENDER,
        from_label="Northwind",
        template_id=acct.template_id,
        send_at=datetime(2030, 1, 15, 9, 0, tzinfo=UTC),
    )

    async def prepare() -> tuple[str, datetime]:
        async with AsyncClient(acct.server.api_key, base_url=acct.server.base_url) as client:
            await publish(client, request)
            async for c in client.campaigns.iter_campaigns(channel="email"):
                if c.attributes.get("status") == "Sent" and c.attributes.get("send_time"):
                    at = datetime.fromisoformat(c.attributes["send_time"].replace("Z", "+00:00"))
                    return str(c.attributes["name"]), at.astimezone(UTC)
        raise AssertionError("the generated account has sent campaigns")

    with ThreadPoolExecutor(1) as pool:
        sent_name, sent_at = pool.submit(asyncio.run, prepare()).result()
    connection_id = seed_connection(dashboard, dashboard.workspace_a, server=acct.server)
    sign_in(page, "admin@a.test")
    page.goto(f"/campaigns?connection={connection_id}&month=2030-01")
    page.get_by_role("link", name="Week", exact=True).click()
    # the month's first week: Monday 31 December 2029 to Sunday 6 January 2030
    expect(page.locator("#week-title")).to_have_text("Week of 31 December 2029 – 6 January 2030")
    every_input_labelled(page)
    no_serious_violations(page)
    page.get_by_role("link", name="Next week").click()
    page.get_by_role("link", name="Next week").click()
    expect(page.locator("#week-title")).to_have_text("Week of 14 January 2030 – 20 January 2030")
    day = page.locator('td[data-date="2030-01-15"]')
    expect(day).to_contain_text("09:00 Winter sale")
    expect(day.locator(".state")).to_have_text("Scheduled")
    expect(page.locator('td[data-date="2030-01-14"] .campaign')).to_have_count(0)
    page.get_by_role("link", name="Previous week").click()
    expect(page.locator("#week-title")).to_have_text("Week of 7 January 2030 – 13 January 2030")
    expect(page.locator("table.calendar .campaign")).to_have_count(0)

    # a sent campaign of the account's history, on its own day and time
    page.goto(f"/campaigns?connection={connection_id}&view=week&week={sent_at.date().isoformat()}")
    sent_day = page.locator(f'td[data-date="{sent_at.date().isoformat()}"]')
    expect(sent_day).to_contain_text(f"{sent_at:%H:%M} {sent_name}")
    expect(sent_day.locator(".campaign", has_text=sent_name).locator(".state")).to_have_text("Sent")
    expect(sent_day.get_by_role("button")).to_have_count(0)  # nothing to cancel once sent
    page.get_by_role("link", name="Month", exact=True).click()
    expect(page.get_by_role("heading", name=f"{sent_at:%B %Y}")).to_be_visible()


def test_create_a_draft_from_a_template_and_lists_then_schedule_it(
    page: Page, dashboard: Dashboard, emulator_factory: Callable[..., EmulatorServer]
) -> None:
    acct = account(emulator_factory)
    connection_id = seed_connection(dashboard, dashboard.workspace_a, server=acct.server)
    sign_in(page, operator(dashboard))
    page.get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name="New campaign from a template").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New campaign")
    every_input_labelled(page)
    no_serious_violations(page)

    page.get_by_label("Campaign name").fill("Spring draft")
    page.get_by_label("Subject").fill("Spring is here")
    page.get_by_label("Template", exact=True).select_option(label="Spring template")
    page.get_by_label("Service audience").check()
    page.get_by_label("From email").fill(SENDER)
    page.get_by_label("Send time (UTC)").fill("2030-02-10T10:30")
    page.get_by_role("button", name="Create campaign").click()
    expect(page.get_by_role("status")).to_contain_text("Draft queued")
    made = settled(dashboard, "campaign_publish")
    assert made.state == "succeeded", made.last_error
    assert made.result is not None
    assert made.result["status"] == "Draft"
    assert made.params["template_id"] == acct.template_id
    assert made.params["included"] == [acct.list_id]

    page.reload()
    drafts = page.get_by_role("table", name="Draft campaigns")
    expect(drafts).to_contain_text("Spring draft")
    every_input_labelled(page)
    # empty send time: the draft's own (10:30 on 10 February)
    drafts.get_by_role("button", name="Schedule Spring draft").click()
    expect(page.get_by_role("status")).to_contain_text("Schedule queued")
    scheduled = settled(dashboard, "campaign_schedule")
    assert scheduled.state == "succeeded", scheduled.last_error

    page.goto(f"/campaigns?connection={connection_id}&month=2030-02")
    day = page.locator('td[data-day="10"]')
    expect(day).to_contain_text("10:30 Spring draft")
    expect(day.locator(".state")).to_have_text("Scheduled")
    expect(page.get_by_role("table", name="Draft campaigns")).to_have_count(0)


def test_a_create_form_that_schedules_without_a_time_is_refused_and_kept(
    page: Page,
    dashboard: Dashboard,
    emulator_factory: Callable[..., EmulatorServer],
    refusals: set[int],
) -> None:
    refusals.add(422)
    acct = account(emulator_factory)
    seed_connection(dashboard, dashboard.workspace_a, server=acct.server)
    sign_in(page, operator(dashboard))
    page.get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name="New campaign from a template").click()
    page.get_by_label("Campaign name").fill("Too soon")
    page.get_by_label("Subject").fill("Now or never")
    page.get_by_label("Template", exact=True).select_option(label="Spring template")
    page.get_by_label("Service audience").check()
    page.get_by_label("Schedule it now").check()
    page.get_by_role("button", name="Create campaign").click()
    expect(page.get_by_role("alert")).to_contain_text("Send at: give a time")
    expect(page.get_by_label("Campaign name")).to_have_value("Too soon")
    expect(page.get_by_label("Service audience")).to_be_checked()
    assert dashboard.appdb.jobs(dashboard.workspace_a) == []


def test_revert_a_scheduled_campaign_to_a_draft_from_the_calendar(
    page: Page, dashboard: Dashboard, emulator_factory: Callable[..., EmulatorServer]
) -> None:
    acct = account(emulator_factory)
    connection_id = seed_connection(dashboard, dashboard.workspace_a, server=acct.server)
    sign_in(page, "admin@a.test")
    page.goto(f"/campaigns/new?connection={connection_id}")
    page.get_by_label("Campaign name").fill("Spring sale")
    page.get_by_label("Subject").fill("Spring is here")
    page.get_by_label("Template", exact=True).select_option(label="Spring template")
    page.get_by_label("Service audience").check()
    page.get_by_label("From email").fill(SENDER)
    page.get_by_label("Send time (UTC)").fill("2030-03-05T08:00")
    page.get_by_label("Schedule it now").check()
    page.get_by_role("button", name="Create campaign").click()
    expect(page.get_by_role("status")).to_contain_text("Campaign queued")
    made = settled(dashboard, "campaign_publish")
    assert made.state == "succeeded", made.last_error

    page.goto(f"/campaigns?connection={connection_id}&month=2030-03")
    notice = page.locator("main .notice").last
    expect(notice).to_contain_text("A cancel is permanent")
    expect(notice).to_contain_text("Klaviyo cannot undo it")
    expect(notice).to_contain_text("returns a scheduled campaign to a draft")
    day = page.locator('td[data-day="5"]')
    expect(day.locator(".state")).to_have_text("Scheduled")
    day.get_by_role("button", name="Revert to draft: Spring sale").click()
    expect(page.get_by_role("status")).to_contain_text("Revert queued")
    expect(page).to_have_url(
        f"{dashboard.base_url}/campaigns?connection={connection_id}"
        "&month=2030-03&view=month&done=campaign_revert"
    )
    reverted = settled(dashboard, "campaign_revert")
    assert reverted.state == "succeeded", reverted.last_error
    assert reverted.result is not None
    assert reverted.result["status"] == "Draft"

    page.reload()
    expect(page.locator('td[data-day="5"] .campaign')).to_have_count(0)
    drafts = page.get_by_role("table", name="Draft campaigns")
    expect(drafts).to_contain_text("Spring sale")

    # the campaign's own page: schedule the draft again, then cancel it for good
    drafts.get_by_role("link", name="Spring sale").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Spring sale")
    expect(page.locator("main")).to_contain_text("Status: Draft")
    expect(page.locator("main")).to_contain_text("A cancel is permanent")
    every_input_labelled(page)
    no_serious_violations(page)
    page.get_by_label("Send at (UTC)").fill("2030-03-06T07:15")
    page.get_by_role("button", name="Schedule", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Schedule queued")
    again = settled(dashboard, "campaign_schedule")
    assert again.state == "succeeded", again.last_error
    page.goto(page.url.split("?")[0])
    expect(page.locator("main")).to_contain_text("Status: Scheduled")
    expect(page.locator("main")).to_contain_text("2030-03-06 07:15 UTC")
    expect(page.get_by_role("button", name="Revert to draft")).to_be_visible()
    no_serious_violations(page)
    page.get_by_role("button", name="Cancel for good").click()
    expect(page.get_by_role("status")).to_contain_text("A cancel is permanent")
    cancelled = settled(dashboard, "campaign_cancel")
    assert cancelled.state == "succeeded", cancelled.last_error
    page.goto(page.url.split("?")[0])
    expect(page.locator("main")).to_contain_text("Status: Cancelled")
    expect(page.locator("main form[method=post]").filter(has_text="Revert")).to_have_count(0)
    expect(page.get_by_role("button", name="Cancel for good")).to_have_count(0)


def test_a_viewer_cannot_create_or_revert(
    page: Page, dashboard: Dashboard, refusals: set[int]
) -> None:
    refusals.add(403)
    connection_id = seed_connection(dashboard, dashboard.workspace_a)
    sign_in(page, "viewer@a.test")
    page.get_by_role("link", name="Campaigns").click()
    expect(page.get_by_role("link", name="New campaign from a template")).to_have_count(0)
    expect(page.locator("main form[method=post]")).to_have_count(0)
    fields = {"connection": connection_id, "name": "Forged", "subject": "x", "template_id": "T1"}
    forge(page, "/campaigns/new", {**fields, "included": "L1"})
    expect(page.get_by_role("heading", level=1)).to_have_text("Refused")
    forge(page, "/campaigns/revert", {"connection": connection_id, "campaign_id": "C1"})
    expect(page.get_by_role("heading", level=1)).to_have_text("Refused")
    answer = page.goto(f"/campaigns/new?connection={connection_id}")
    assert answer is not None
    assert answer.status == 403
    assert dashboard.appdb.jobs(dashboard.workspace_a) == []


def test_a_campaigns_performance_from_the_synced_warehouse(
    page: Page,
    dashboard: Dashboard,
    tmp_path: Path,
    emulator_factory: Callable[..., EmulatorServer],
) -> None:
    server = emulator_factory()
    sign_in(page, "admin@a.test")
    # connected through the page: verified, so its account id is the one the sync writes
    page.get_by_label("Name", exact=True).fill("shop")
    page.get_by_label("Private API key").fill(server.api_key)
    page.get_by_text("Advanced", exact=True).click()
    page.get_by_label("Base URL", exact=True).fill(server.base_url)
    page.get_by_label("Rate limits").fill("off")
    page.get_by_role("button", name="Connect", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Connected.")
    store = SqlConnectionStore(
        dashboard.appdb.engine, dashboard.workspace_a, master_key=dashboard.master_key
    )
    record = store.get("shop")

    async def newest_sent() -> tuple[str, str, datetime]:
        async with AsyncClient(server.api_key, base_url=server.base_url) as client:
            found: list[tuple[str, str, datetime]] = []
            async for c in client.campaigns.iter_campaigns(channel="email"):
                if c.attributes.get("status") == "Sent" and c.id:
                    at = datetime.fromisoformat(c.attributes["send_time"].replace("Z", "+00:00"))
                    found.append((c.id, str(c.attributes["name"]), at.astimezone(UTC)))
        return max(found, key=lambda f: f[2])

    with ThreadPoolExecutor(1) as pool:
        campaign_id, name, sent_at = pool.submit(asyncio.run, newest_sent()).result()

    # before any sync: the page says so rather than showing zeros
    page.goto(f"/campaigns?connection={record.id}&month={sent_at:%Y-%m}")
    page.locator(f'td[data-day="{sent_at.day}"]').get_by_role("link", name=name).click()
    expect(page).to_have_url(f"{dashboard.base_url}/campaigns/{record.id}/{campaign_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    expect(page.locator("main")).to_contain_text("Status: Sent")
    expect(page.locator("main")).to_contain_text("has not been synced yet")
    no_serious_violations(page)

    page.goto(f"/connections/{record.id}")
    page.get_by_role("button", name="Start a sync").click()
    synced = settled(dashboard, "sync")
    assert synced.state == "succeeded", synced.last_error

    url = store.settings("shop").warehouse or default_warehouse_url(
        tmp_path / "data", dashboard.workspace_a, "shop"
    )
    warehouse = open_warehouse(url)
    try:
        rows = campaign_performance(warehouse, record.account_id, reconcile=False).messages
    finally:
        warehouse.close()
    (mine,) = [r for r in rows.records() if r["parent_id"] == campaign_id]
    assert mine["recipients"] > 0

    page.goto(f"/campaigns/{record.id}/{campaign_id}")
    figures = page.locator("dl.figures")
    expect(figures.locator('dd[data-figure="Recipients (sent)"]')).to_have_text(
        f"{mine['recipients']:,}"
    )
    expect(figures.locator('dd[data-figure="Delivered"]')).to_have_text(f"{mine['delivered']:,}")
    expect(figures.locator('dd[data-figure="Open rate (unique)"]')).to_have_text(
        f"{mine['open_rate'] * 100:.1f}%"
    )
    expect(figures.locator('dd[data-figure="Click rate (unique)"]')).to_have_text(
        f"{mine['click_rate'] * 100:.1f}%"
    )
    expect(figures.locator('dd[data-figure="Revenue"]')).to_have_text(f"{mine['revenue']:,.2f}")
    expect(page.locator("main")).not_to_contain_text("has not been synced yet")
    no_serious_violations(page)
