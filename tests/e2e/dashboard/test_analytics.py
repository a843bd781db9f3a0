"""The Analytics page in a real browser: the connection's HTML report built by a job and
served to its own workspace alone; an RFM segment pushed to a Klaviyo list."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from kbridge.analytics import DEFAULT_SEGMENTS, rfm
from kbridge.emulator.server import EmulatorServer
from kbridge.service.connection_store import SqlConnectionStore
from kbridge.service.jobs import default_warehouse_url
from kbridge.service.views import JobView
from kbridge.warehouse import open_warehouse

from .conftest import Dashboard, every_input_labelled, sign_in
from .test_dashboard import forge, seed_connection

pytestmark = pytest.mark.e2e


def finished(dashboard: Dashboard, kind: str) -> JobView:
    """The workspace's newest ``kind`` job once the worker is done with it (at most 120 s)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for job in dashboard.appdb.jobs(dashboard.workspace_a):
            if job.kind == kind and job.state in ("succeeded", "failed", "cancelled"):
                return job
        time.sleep(0.2)
    raise AssertionError(f"no {kind} job finished")


def biggest_segment(url: str, account_id: str) -> str:
    warehouse = open_warehouse(url)
    try:
        result = rfm(warehouse, account_id)
    finally:
        warehouse.close()
    named = {rule.name for rule in DEFAULT_SEGMENTS}
    counts = Counter(str(r["segment"]) for r in result.profiles.records())
    return next(name for name, _ in counts.most_common() if name in named)


def test_build_and_open_the_report_then_push_a_segment(
    page: Page,
    dashboard: Dashboard,
    tmp_path: Path,
    emulator_factory: Callable[..., EmulatorServer],
    refusals: set[int],
) -> None:
    refusals.add(404)
    server = emulator_factory()  # its own account: the push makes a list there
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
    connection_id = record.id
    page.get_by_role("button", name="Start a sync").click()
    synced = finished(dashboard, "sync")
    assert synced.state == "succeeded", synced.last_error

    page.get_by_role("link", name="Analytics").click()
    every_input_labelled(page)
    expect(page.locator("main")).to_contain_text("No report built yet.")
    page.get_by_role("button", name="Build the report").click()
    expect(page.get_by_role("status")).to_contain_text("Report queued")
    built = finished(dashboard, "report")
    assert built.state == "succeeded", built.last_error
    page.reload()
    page.get_by_role("link", name="Open the report").click()
    expect(page).to_have_url(f"{dashboard.base_url}/analytics/{connection_id}/report")
    expect(page.locator("body")).to_contain_text("RFM")

    # another workspace's admin is not shown it
    page.goto("/analytics")
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, "admin@b.test")
    answer = page.goto(f"/analytics/{connection_id}/report")
    assert answer is not None
    assert answer.status == 404
    assert page.request.get(f"/analytics/{connection_id}/churn").status == 404
    page.get_by_role("button", name="Sign out").click()

    url = store.settings("shop").warehouse or default_warehouse_url(
        tmp_path / "data", dashboard.workspace_a, "shop"
    )
    segment = biggest_segment(url, record.account_id)
    sign_in(page, "admin@a.test")
    page.get_by_role("link", name="Analytics").click()
    page.get_by_label("Segment", exact=True).select_option(segment)
    page.get_by_label("List name").fill("Dashboard push")
    page.get_by_role("button", name="Push segment").click()
    expect(page.get_by_role("status")).to_contain_text("Segment push queued.")
    pushed = finished(dashboard, "segment_push")
    assert pushed.state == "succeeded", pushed.last_error
    assert pushed.result is not None
    assert pushed.result["list_name"] == "Dashboard push"
    assert pushed.result["profiles"] > 0
    page.reload()
    expect(page.locator("main")).to_contain_text(f"{segment} → list Dashboard push")


def test_a_viewer_cannot_build_or_push(
    page: Page, dashboard: Dashboard, refusals: set[int]
) -> None:
    refusals.add(403)
    connection_id = seed_connection(dashboard, dashboard.workspace_a)
    sign_in(page, "viewer@a.test")
    page.get_by_role("link", name="Analytics").click()
    expect(page.get_by_role("heading", name="RFM segments")).to_be_visible()
    expect(page.locator("main form[method=post]")).to_have_count(0)
    forge(page, f"/analytics/{connection_id}/push", {"segment": "Lost"})
    expect(page.get_by_role("heading", level=1)).to_have_text("Refused")
    assert dashboard.appdb.jobs(dashboard.workspace_a) == []
