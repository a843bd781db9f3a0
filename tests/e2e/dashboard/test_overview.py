"""The account overview in a real browser: the worker's rate budget and 429s, polled live."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import Page, expect

from kbridge.emulator.server import EmulatorServer
from kbridge.service.connection_store import SqlConnectionStore

from .conftest import Dashboard, no_serious_violations, sign_in
from .test_analytics import finished

pytestmark = pytest.mark.e2e


def test_gauges_and_429s_follow_the_worker_without_a_reload(
    page: Page, dashboard: Dashboard, emulator_factory: Callable[..., EmulatorServer]
) -> None:
    # its own (the faults below must not reach other tests), metering 20 × Klaviyo's limits
    # and saying so in its headers: at 1 × the reporting endpoints' 2 a minute take minutes
    server = emulator_factory(rate_limit_factor=20.0)
    sign_in(page, "admin@a.test")
    page.get_by_label("Name", exact=True).fill("paced")
    page.get_by_label("Private API key").fill(server.api_key)
    page.get_by_text("Advanced", exact=True).click()
    page.get_by_label("Base URL", exact=True).fill(server.base_url)
    page.get_by_label("Rate limits").fill("20")
    page.get_by_role("button", name="Connect", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Connected.")
    store = SqlConnectionStore(
        dashboard.appdb.engine, dashboard.workspace_a, master_key=dashboard.master_key
    )
    connection_id = store.get("paced").id
    # Klaviyo refuses some requests from now on: the worker retries them after Retry-After
    reply = httpx.post(
        f"{server.base_url}/_emulator/faults", json={"spec": "http429=0.03@1s"}, timeout=30.0
    )
    assert reply.status_code == 200, reply.text

    page.goto(f"/connections/{connection_id}")
    overview = page.locator("#overview")
    expect(overview).to_contain_text("429s in the last 24 hours: 0")
    expect(overview).to_contain_text("No requests to Klaviyo for this account yet today.")
    daily = overview.locator('[data-daily="query_campaign_values"] [data-used]')
    expect(daily).to_have_text("0 / 225")
    no_serious_violations(page)

    # the sync starts from another tab; this one is never reloaded: htmx polls the fragment
    other = page.context.new_page()
    other.goto(f"/connections/{connection_id}")
    other.get_by_role("button", name="Start a sync").click()
    other.close()

    # the windows fill while the worker runs: some tier's busiest endpoint is counted
    steady = overview.locator("[data-steady]").filter(has_text=re.compile(r"^[1-9]\d* / "))
    expect(steady.first).to_be_visible(timeout=120_000)
    synced = finished(dashboard, "sync")
    assert synced.state == "succeeded", synced.last_error
    # the reporting endpoint's daily quota burned (a factor scales windows, not days)
    expect(daily).to_have_text(re.compile(r"^[1-9]\d* / 225$"))
    # every 429 the emulator answered is counted, from the jobs' timeline
    counts = httpx.get(f"{server.base_url}/_emulator/faults", timeout=30.0).json()["counts"]
    refused = counts.get("http429", 0)
    assert refused > 0, counts
    expect(overview.locator("[data-rate-limited]")).to_have_text(
        f"429s in the last 24 hours: {refused}", timeout=10_000
    )
    assert page.evaluate("() => performance.getEntriesByType('navigation').length") == 1
    tiers = overview.get_by_role("table", name="Rate budget by endpoint tier")
    expect(tiers.get_by_role("meter").first).to_be_visible()
