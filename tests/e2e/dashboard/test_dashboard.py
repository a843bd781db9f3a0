"""The dashboard in a real browser: sign-in, connections, jobs, roles and workspaces.

Each flow clicks and submits as a person would; the ``page`` fixture fails it on
any browser console error and leaves a screenshot under the test's tmp_path.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import Page, expect

from kbridge.connections import Sender
from kbridge.emulator.server import EmulatorServer
from kbridge.service.connection_store import SqlConnectionStore
from kbridge.warehouse import open_warehouse

from .conftest import PASSWORD, Dashboard, every_input_labelled, sign_in

pytestmark = pytest.mark.e2e

NAV = ["Connections", "Jobs", "Privacy", "Campaigns", "Analytics"]
#: a key of the right shape that no emulator knows
BAD_KEY = "pk_" + "0" * 34


def mint_key(dashboard: Dashboard, scopes: list[str]) -> str:
    """A key of the emulator's account granted only ``scopes``."""
    reply = httpx.post(
        f"{dashboard.emulator.base_url}/_emulator/keys", json={"scopes": scopes}, timeout=30.0
    )
    assert reply.status_code == 201, reply.text
    key: str = reply.json()["key"]
    return key


def seed_connection(
    dashboard: Dashboard,
    workspace_id: str,
    name: str = "shop",
    api_key: str | None = None,
    server: EmulatorServer | None = None,
) -> str:
    """A connection saved straight into the workspace (no verification); its id."""
    store = SqlConnectionStore(
        dashboard.appdb.engine, workspace_id, master_key=dashboard.master_key
    )
    server = server or dashboard.emulator
    return store.upsert(
        name,
        kind="api_key",
        base_url=server.base_url,
        account_id="ACCT",
        account_name="Seeded shop",
        sender=Sender(),
        capabilities=(),
        scopes=("accounts:read",),
        secrets={"api_key": api_key or server.api_key},
        rate_limits="off",
    ).id


def connect(page: Page, dashboard: Dashboard, name: str, key: str) -> None:
    page.goto("/connections")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Private API key").fill(key)
    page.get_by_text("Advanced").click()
    page.get_by_label("Base URL").fill(dashboard.emulator.base_url)
    page.get_by_label("Rate limits").fill("off")
    page.get_by_role("button", name="Connect").click()


def test_sign_in_shows_the_navigation_and_labelled_pages(page: Page, dashboard: Dashboard) -> None:
    page.goto("/connections")
    expect(page).to_have_url(f"{dashboard.base_url}/login")  # signed out: sent to sign in
    every_input_labelled(page)
    assert page.locator('link[rel="icon"]').get_attribute("href") == "/static/favicon.svg"
    sign_in(page, "admin@a.test")
    expect(page).to_have_url(f"{dashboard.base_url}/connections")
    nav = page.get_by_role("navigation", name="Main")
    for label in NAV:
        expect(nav.get_by_role("link", name=label)).to_be_visible()
    expect(nav).to_contain_text("admin@a.test")
    every_input_labelled(page)
    for label in NAV[2:]:
        nav.get_by_role("link", name=label).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(label)
        every_input_labelled(page)
    # the session cookie is out of scripts' reach and not sent from other sites' forms
    cookie = next(c for c in page.context.cookies() if c["name"] == "kbridge_session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["secure"] is False  # plain http on loopback; Secure behind TLS
    nav.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{dashboard.base_url}/login")
    page.goto("/jobs")
    expect(page).to_have_url(f"{dashboard.base_url}/login")


def test_signing_in_and_connecting_work_from_the_keyboard(page: Page, dashboard: Dashboard) -> None:
    page.goto("/login")
    page.keyboard.press("Tab")
    page.keyboard.type("admin@a.test")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{dashboard.base_url}/connections")
    page.get_by_label("Name", exact=True).focus()
    page.keyboard.type("shop")
    page.keyboard.press("Tab")
    page.keyboard.type(dashboard.emulator.api_key)
    page.keyboard.press("Tab")  # onto "Advanced"
    page.keyboard.press("Enter")  # opens it
    page.keyboard.press("Tab")
    page.keyboard.type(dashboard.emulator.base_url)
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Connected.")


def test_a_wrong_password_is_refused_and_repeated_failures_slow_down(
    page: Page, dashboard: Dashboard, refusals: set[int]
) -> None:
    refusals.update({401, 429})
    for _ in range(3):
        sign_in(page, "admin@a.test", "not the password")
        expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    # the third failure starts a wait: even the right password is not checked inside it
    sign_in(page, "admin@a.test")
    expect(page.get_by_role("alert")).to_contain_text("Too many failed sign-ins")
    expect(page).to_have_url(f"{dashboard.base_url}/login")
    dashboard.clock.advance(1.5)
    sign_in(page, "admin@a.test")
    expect(page).to_have_url(f"{dashboard.base_url}/connections")
    # an unknown email is told the same as a wrong password
    page.context.clear_cookies()
    sign_in(page, "nobody@a.test")
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")


def test_a_form_without_its_csrf_token_is_refused(
    page: Page, dashboard: Dashboard, refusals: set[int]
) -> None:
    refusals.add(403)
    page.goto("/login")
    page.locator('input[name="csrf_token"]').evaluate("el => el.remove()")
    page.get_by_label("Email").fill("admin@a.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("security token is missing or stale")
    sign_in(page, "admin@a.test")
    page.goto("/connections")
    form = page.locator('form[action="/connections"]')
    form.locator('input[name="csrf_token"]').evaluate("el => el.value = 'forged'")
    connect_fields = {"Name": "shop", "Private API key": dashboard.emulator.api_key}
    for label, value in connect_fields.items():
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_role("button", name="Connect").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Refused")
    store = SqlConnectionStore(
        dashboard.appdb.engine, dashboard.workspace_a, master_key=dashboard.master_key
    )
    assert store.list() == []


def test_a_key_lacking_a_scope_names_it_then_a_good_key_unlocks_it(
    page: Page, dashboard: Dashboard, refusals: set[int]
) -> None:
    refusals.add(422)
    sign_in(page, "admin@a.test")
    connect(page, dashboard, "shop", BAD_KEY)
    expect(page.get_by_role("alert")).to_have_text(
        "Private API key: Klaviyo refused this credential (wrong or revoked)"
    )
    # what was typed is kept, not the key
    expect(page.get_by_label("Name", exact=True)).to_have_value("shop")
    connect(page, dashboard, "shop", mint_key(dashboard, ["accounts:read", "profiles:read"]))
    expect(page.get_by_role("status")).to_have_text("Connected.")
    expect(page.get_by_role("heading", level=1)).to_have_text("shop")
    sync_row = page.get_by_role("row").filter(has=page.get_by_role("cell", name="sync", exact=True))
    expect(sync_row).to_contain_text("missing scopes")
    expect(sync_row).to_contain_text("events:read (missing)")
    expect(sync_row).not_to_contain_text("profiles:read (missing)")
    every_input_labelled(page)
    page.get_by_label("New private API key").fill(dashboard.emulator.api_key)
    page.get_by_role("button", name="Rotate key").click()
    expect(page.get_by_role("status")).to_have_text("Key rotated.")
    expect(sync_row).to_contain_text("ready")
    expect(page.locator("main")).not_to_contain_text("(missing)")
    expect(page.locator("main")).to_contain_text("key rotated")
    # disconnecting forgets the key and says what it cannot undo
    expect(page.locator("main")).to_contain_text(
        "Campaigns already scheduled in Klaviyo will still send"
    )
    page.get_by_role("button", name="Disconnect").click()
    expect(page.get_by_role("status")).to_contain_text("its key is forgotten")
    expect(page.get_by_role("status")).to_contain_text(
        "Campaigns already scheduled in Klaviyo will still send"
    )
    expect(page.get_by_text("No Klaviyo account is connected")).to_be_visible()


def test_start_a_sync_and_watch_it_succeed(page: Page, dashboard: Dashboard) -> None:
    sign_in(page, "admin@a.test")
    connect(page, dashboard, "shop", dashboard.emulator.api_key)
    expect(page.get_by_role("status")).to_have_text("Connected.")
    page.get_by_role("button", name="Start a sync").click()
    expect(page).to_have_url(f"{dashboard.base_url}/jobs?done=sync")
    state = page.locator("#jobs td.state").first
    # the table is refreshed by htmx polling, not by reloading the page
    expect(state).to_have_text("succeeded", timeout=120_000)
    expect(page.locator("#jobs")).to_contain_text("profiles")
    expect(page.locator("#jobs")).to_contain_text("1 of")
    page.get_by_role("link", name="Connections").click()
    page.get_by_role("link", name="shop").click()
    streams = page.locator("section", has=page.get_by_role("heading", name="Streams"))
    profiles = streams.get_by_role("row").filter(
        has=page.get_by_role("cell", name="profiles", exact=True)
    )
    expect(profiles).to_contain_text("40")
    # the counts are the warehouse's own, not the last run's report
    store = SqlConnectionStore(
        dashboard.appdb.engine, dashboard.workspace_a, master_key=dashboard.master_key
    )
    url = store.settings("shop").warehouse
    assert url is not None
    warehouse = open_warehouse(url)
    try:
        warehouse.query("DELETE FROM profiles WHERE id = (SELECT min(id) FROM profiles)")
    finally:
        warehouse.close()
    page.reload()
    expect(profiles).to_contain_text("39")


def test_a_sync_from_a_start_date(page: Page, dashboard: Dashboard, refusals: set[int]) -> None:
    refusals.add(422)
    connection_id = seed_connection(dashboard, dashboard.workspace_a)
    sign_in(page, "admin@a.test")
    page.goto(f"/connections/{connection_id}")
    # a browser's date input only sends days; a hand-made form may send anything
    forge(page, f"/connections/{connection_id}/sync", {"start_date": "last tuesday"})
    expect(page.get_by_role("alert")).to_have_text(
        "Start date: 'last tuesday' is not a day like 2024-01-31"
    )
    assert dashboard.appdb.jobs(dashboard.workspace_a) == []
    page.get_by_label("Start date").fill("2024-02-01")
    page.get_by_role("button", name="Start a sync").click()
    expect(page.get_by_role("status")).to_have_text("Sync queued.")
    (job,) = dashboard.appdb.jobs(dashboard.workspace_a)
    assert job.params == {"start_date": "2024-02-01T00:00:00+00:00"}


def test_a_failed_job_shows_its_error_and_can_be_retried(page: Page, dashboard: Dashboard) -> None:
    seed_connection(dashboard, dashboard.workspace_a, api_key=BAD_KEY)
    sign_in(page, "admin@a.test")
    page.get_by_role("link", name="shop").click()
    page.get_by_role("button", name="Start a sync").click()
    row = page.locator("#jobs tbody tr").first
    expect(row.locator("td.state")).to_have_text("failed", timeout=120_000)
    expect(row.locator(".error")).not_to_be_empty()
    row.get_by_role("button", name="Retry").click()
    expect(page.get_by_role("status")).to_have_text("Queued again.")
    expect(page.locator("#jobs tbody tr").first.locator("td.state")).to_have_text(
        "failed", timeout=120_000
    )
    page.locator("#jobs tbody tr").first.get_by_role("link").click()
    expect(page.get_by_role("heading", name="Timeline")).to_be_visible()
    expect(page.locator("main")).to_contain_text("retried")


def test_a_running_sync_is_cancelled_from_the_jobs_page(
    page: Page, dashboard: Dashboard, emulator_factory: Callable[..., EmulatorServer]
) -> None:
    slow = emulator_factory(profiles=600, events=50, faults="latency=200ms")
    seed_connection(dashboard, dashboard.workspace_a, server=slow)
    sign_in(page, "admin@a.test")
    page.get_by_role("link", name="shop").click()
    page.get_by_role("button", name="Start a sync").click()
    row = page.locator("#jobs tbody tr").first
    expect(row.locator("td.state")).to_have_text("running", timeout=60_000)
    row.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("status")).to_have_text("Cancelled.")
    row = page.locator("#jobs tbody tr").first
    expect(row.locator("td.state")).to_have_text("cancelled", timeout=60_000)
    expect(row.get_by_role("button", name="Retry")).to_be_visible()
    (job,) = dashboard.appdb.jobs(dashboard.workspace_a)
    assert job.state == "cancelled"


def test_a_viewer_sees_no_action_buttons_and_a_forged_post_is_refused(
    page: Page, dashboard: Dashboard, refusals: set[int]
) -> None:
    refusals.add(403)
    connection_id = seed_connection(dashboard, dashboard.workspace_a)
    sign_in(page, "viewer@a.test")
    expect(page.get_by_role("link", name="shop")).to_be_visible()
    expect(page.get_by_label("Private API key")).to_have_count(0)
    page.get_by_role("link", name="shop").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("shop")
    # the only button a viewer has is signing out
    expect(page.locator("main button")).to_have_count(0)
    page.get_by_role("link", name="Jobs").click()
    expect(page.locator("main button")).to_have_count(0)
    for action in ("disconnect", "sync"):
        forge(page, f"/connections/{connection_id}/{action}", {"api_key": BAD_KEY})
        expect(page.get_by_role("heading", level=1)).to_have_text("Refused")
        expect(page.locator("main")).to_contain_text("Your role may not do this")
    store = SqlConnectionStore(
        dashboard.appdb.engine, dashboard.workspace_a, master_key=dashboard.master_key
    )
    assert [r.id for r in store.list()] == [connection_id]
    assert dashboard.appdb.jobs(dashboard.workspace_a) == []


def forge(page: Page, action: str, fields: dict[str, str]) -> None:
    """POST a form the page did not offer, carrying the session's own CSRF token."""
    page.evaluate(
        """([action, fields]) => {
            const form = document.createElement('form');
            form.method = 'post';
            form.action = action;
            const token = document.querySelector('input[name="csrf_token"]').value;
            for (const [name, value] of Object.entries({...fields, csrf_token: token})) {
                const input = document.createElement('input');
                input.type = 'hidden'; input.name = name; input.value = value;
                form.appendChild(input);
            }
            document.body.appendChild(form);
            form.submit();
        }""",
        [action, fields],
    )
    page.wait_for_load_state()


def test_another_workspaces_connection_is_not_found(
    page: Page, dashboard: Dashboard, refusals: set[int]
) -> None:
    refusals.add(404)
    theirs = seed_connection(dashboard, dashboard.workspace_b, name="their-shop")
    sign_in(page, "admin@a.test")
    answer = page.goto(f"/connections/{theirs}")
    assert answer is not None
    assert answer.status == 404
    expect(page.get_by_role("alert")).to_have_text("No such connection in this workspace.")
    forge(page, f"/connections/{theirs}/disconnect", {})
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    store = SqlConnectionStore(
        dashboard.appdb.engine, dashboard.workspace_b, master_key=dashboard.master_key
    )
    assert [r.id for r in store.list()] == [theirs]
