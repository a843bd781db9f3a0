"""axe-core (pinned, vendored from the npm registry) finds no serious or critical violation
on any page of the dashboard, as an admin (every form drawn) and as a viewer."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from .conftest import Dashboard, no_serious_violations, sign_in
from .test_dashboard import seed_connection

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("email", ["admin@a.test", "viewer@a.test"])
def test_every_page_has_no_serious_or_critical_violation(
    page: Page, dashboard: Dashboard, email: str
) -> None:
    page.goto("/login")
    no_serious_violations(page)
    connection_id = seed_connection(dashboard, dashboard.workspace_a)
    job = dashboard.appdb.enqueue_job(
        dashboard.workspace_a, "report", {}, connection_id=connection_id
    )
    dashboard.appdb.create_schedule(
        dashboard.workspace_a, connection_id, "sync", daily_at="05:00", timezone="UTC"
    )
    sign_in(page, email)
    for path in (
        "/connections",
        f"/connections/{connection_id}",
        "/jobs",
        f"/jobs/{job.id}",
        "/privacy",
        "/campaigns",
        "/analytics",
    ):
        page.goto(path)
        no_serious_violations(page)


def test_the_check_finds_a_serious_violation_when_there_is_one(page: Page) -> None:
    page.goto("/login")
    # the email input loses its label: axe's "label" rule is critical
    page.evaluate("() => document.querySelector('label[for=email]').remove()")
    with pytest.raises(AssertionError, match="label"):
        no_serious_violations(page)
