"""The Privacy page in a real browser: requests with their legal clocks, followed to
"confirmed"; the access report viewed and downloaded; the audit log searched by email."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import Page, expect

from kbridge.emulator.server import EmulatorServer
from kbridge.testing.plugin import http_client_for
from tests.integration.service.jobhelp import emulator_ids

from .conftest import Dashboard, every_input_labelled, no_serious_violations, sign_in
from .test_dashboard import forge, seed_connection

pytestmark = pytest.mark.e2e


def first_profile(server: EmulatorServer) -> tuple[str, str]:
    with http_client_for(server) as http:
        first = http.get("/api/profiles").json()["data"][0]
    return first["id"], first["attributes"]["email"]


def submit(page: Page, kind: str, subject: str, law: str) -> None:
    page.get_by_role("link", name="Privacy").click()
    page.get_by_label("Request", exact=True).select_option(label=kind)
    page.get_by_label("Email or phone", exact=True).fill(subject)
    page.get_by_label("Law", exact=True).select_option(label=law)
    page.get_by_role("button", name="Submit request").click()


def test_submit_a_deletion_and_follow_it_to_confirmed(
    page: Page, dashboard: Dashboard, emulator_factory: Callable[..., EmulatorServer]
) -> None:
    # an account of its own (a profile is deleted); Klaviyo's deletions take its 60 s
    server = emulator_factory()
    seed_connection(dashboard, dashboard.workspace_a, name="gone", server=server)
    profile_id, email = first_profile(server)
    sign_in(page, "admin@a.test")
    page.get_by_role("link", name="Privacy").click()
    every_input_labelled(page)

    submit(page, "Deletion", email, "CCPA (45 days)")

    expect(page.get_by_role("status")).to_have_text("Request received: its job is queued.")
    row = page.locator("#privacy-queue tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("deletion")
    expect(row).to_contain_text("CCPA")
    expect(row).to_contain_text("45 days left")
    # the subject is shown as its kind alone: the page never holds the address
    expect(row).to_contain_text("email (hashed)")
    assert email not in page.content()
    # Klaviyo accepted the deletion; it finishes once the emulator's time has moved on
    expect(row.locator(".state")).to_have_text("requested", timeout=60_000)
    moved = httpx.post(
        f"{server.base_url}/_emulator/clock", json={"advance_seconds": 120}, timeout=30.0
    )
    assert moved.status_code == 200, moved.text
    expect(row.locator(".state")).to_have_text("confirmed", timeout=60_000)
    expect(row).not_to_contain_text("days left")  # the clock stops once answered
    assert profile_id not in emulator_ids(server)

    # the audit log, searched by typing the email (the server hashes it)
    page.get_by_label("Subject's email or phone").fill(email.upper())
    page.get_by_role("button", name="Search the audit log").click()
    entries = page.get_by_role("table", name="Audit entries")
    expect(entries).to_contain_text("delete")
    expect(entries).to_contain_text(profile_id)
    no_serious_violations(page)
    page.get_by_label("Subject's email or phone").fill("nobody@example.com")
    page.get_by_role("button", name="Search the audit log").click()
    expect(page.get_by_role("status")).to_have_text("No audit entries for that subject.")


def test_an_access_report_is_viewed_and_downloaded(
    page: Page,
    dashboard: Dashboard,
    emulator_factory: Callable[..., EmulatorServer],
    refusals: set[int],
) -> None:
    server = emulator_factory()
    seed_connection(dashboard, dashboard.workspace_a, name="shop", server=server)
    profile_id, email = first_profile(server)
    sign_in(page, "admin@a.test")

    submit(page, "Access (a report of their data)", email, "GDPR (30 days)")

    row = page.locator("#privacy-queue tbody tr")
    expect(row).to_contain_text("30 days left")
    expect(row.locator(".state")).to_have_text("confirmed", timeout=60_000)
    with page.expect_download() as download:
        row.get_by_role("link", name="Download JSON").click()
    saved = download.value
    assert saved.suggested_filename.startswith("access-report-")
    body = json.loads(saved.path().read_text(encoding="utf-8"))
    assert body["request"]["state"] == "confirmed"
    assert [r["email"] for r in body["reports"]] == [email]
    assert body["reports"][0]["profile_ids"] == [profile_id]

    row.get_by_role("link", name="View report").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Access report")
    expect(page.get_by_role("heading", level=2)).to_have_text(email)
    expect(page.get_by_role("heading", level=3)).to_have_text(f"Profile {profile_id}")
    expect(page.get_by_role("table", name=f"Profile {profile_id} attributes")).to_contain_text(
        email
    )
    no_serious_violations(page)
    report_path = page.url.removeprefix(dashboard.base_url)

    # the report is the person's data: a viewer sees the request, not its report
    refusals.add(403)
    page.context.clear_cookies()
    sign_in(page, "viewer@a.test")
    page.get_by_role("link", name="Privacy").click()
    expect(page.locator("#privacy-queue tbody tr .state")).to_have_text("confirmed")
    expect(page.locator("#privacy-queue").get_by_role("link", name="View report")).to_have_count(0)
    for path in (report_path, report_path + ".json"):
        answer = page.goto(path)
        assert answer is not None
        assert answer.status == 403


def test_a_bad_subject_is_refused_naming_the_field(
    page: Page, dashboard: Dashboard, refusals: set[int]
) -> None:
    refusals.add(422)
    seed_connection(dashboard, dashboard.workspace_a)
    sign_in(page, "admin@a.test")

    submit(page, "Deletion", "555 0006", "GDPR (30 days)")

    expect(page.get_by_role("alert")).to_contain_text("Email or phone: not a valid email address")
    submit(page, "Deletion", "+1 555", "GDPR (30 days)")
    expect(page.get_by_role("alert")).to_contain_text("Email or phone: not an E.164 phone number")
    assert dashboard.appdb.privacy_requests(dashboard.workspace_a) == []


def test_a_viewer_sees_the_queue_but_no_form_and_a_forged_request_is_refused(
    page: Page, dashboard: Dashboard, refusals: set[int]
) -> None:
    refusals.add(403)
    connection_id = seed_connection(dashboard, dashboard.workspace_a)
    sign_in(page, "viewer@a.test")
    page.get_by_role("link", name="Privacy").click()
    expect(page.get_by_role("heading", name="Requests")).to_be_visible()
    expect(page.get_by_role("button", name="Submit request")).to_have_count(0)
    # searching the audit log is reading: a viewer may
    expect(page.get_by_role("button", name="Search the audit log")).to_be_visible()

    forge(
        page,
        "/privacy",
        {
            "kind": "deletion",
            "subject": "a@b.co",
            "connection": connection_id,
            "regulation": "gdpr",
        },
    )

    expect(page.get_by_role("heading", level=1)).to_have_text("Refused")
    expect(page.locator("main")).to_contain_text("Your role may not do this")
    assert dashboard.appdb.privacy_requests(dashboard.workspace_a) == []
    assert dashboard.appdb.jobs(dashboard.workspace_a) == []


def test_a_request_without_its_csrf_token_is_refused(
    page: Page, dashboard: Dashboard, refusals: set[int]
) -> None:
    refusals.add(403)
    seed_connection(dashboard, dashboard.workspace_a)
    sign_in(page, "admin@a.test")
    page.get_by_role("link", name="Privacy").click()
    form = page.locator('form[action="/privacy"]')
    form.locator('input[name="csrf_token"]').evaluate("el => el.remove()")
    page.get_by_label("Email or phone", exact=True).fill("a@b.co")
    page.get_by_role("button", name="Submit request").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Refused")
    assert dashboard.appdb.privacy_requests(dashboard.workspace_a) == []


def test_another_workspaces_report_is_not_found(
    page: Page, dashboard: Dashboard, refusals: set[int]
) -> None:
    refusals.add(404)
    theirs = seed_connection(dashboard, dashboard.workspace_a)
    made, _ = dashboard.appdb.create_privacy_request(
        dashboard.workspace_a,
        theirs,
        action="access",
        regulation="gdpr",
        subject_type="email",
        subject_hash="0" * 64,
        params={},
    )
    sign_in(page, "admin@b.test")
    for path in (f"/privacy/{made.id}/report", f"/privacy/{made.id}/report.json"):
        answer = page.goto(path)
        assert answer is not None
        assert answer.status == 404
    page.goto("/privacy")
    expect(page.locator("#privacy-queue")).to_contain_text("No privacy requests yet.")
