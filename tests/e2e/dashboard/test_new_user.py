"""What a new user tripped on when trying the dashboard (#21): each page says where to go next."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from .conftest import sign_in

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("path", ["/privacy", "/campaigns", "/analytics"])
def test_a_page_that_needs_a_connection_links_to_the_connections_page(
    page: Page, path: str
) -> None:
    sign_in(page, "admin@a.test")
    page.goto(path)
    page.get_by_role("main").get_by_role("link", name="Connect a Klaviyo account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Connections")


@pytest.mark.parametrize(
    ("path", "done"),
    [
        ("/campaigns", "campaign_publish"),
        ("/campaigns", "campaign_cancel"),
        ("/analytics", "report"),
        ("/analytics", "segment_push"),
    ],
)
def test_a_queued_action_off_the_jobs_page_links_to_its_job(
    page: Page, path: str, done: str
) -> None:
    # the calendar and the analytics page do not refresh themselves: the notice must say
    # where the job can be watched, or the button seems to have done nothing
    sign_in(page, "admin@a.test")
    page.goto(f"{path}?done={done}")
    page.get_by_role("status").get_by_role("link", name="Follow it under Jobs").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Jobs")


def test_the_jobs_page_itself_offers_no_link_to_itself(page: Page) -> None:
    sign_in(page, "admin@a.test")
    page.goto("/jobs?done=sync")
    expect(page.get_by_role("status")).to_have_text("Sync queued.")
    expect(page.get_by_role("status").get_by_role("link")).to_have_count(0)


def test_the_privacy_queue_says_what_each_state_means(page: Page) -> None:
    # "requested" sat there for a minute with nothing saying that Klaviyo was still deleting
    sign_in(page, "admin@a.test")
    page.goto("/privacy")
    states = page.get_by_role("region", name="Requests").locator("#privacy-states")
    expect(states).to_contain_text("requested: Klaviyo accepted it")
    expect(states).to_contain_text("confirmed")


def test_the_base_url_field_says_when_to_fill_it(page: Page) -> None:
    # left empty, the emulator's key went to Klaviyo: "could not reach https://a.klaviyo.com"
    sign_in(page, "admin@a.test")
    page.goto("/connections")
    page.get_by_text("Advanced").click()
    base_url = page.get_by_label("Base URL")
    expect(base_url).to_have_accessible_description(
        re.compile(
            r"^Empty for Klaviyo\. For another host, such as the emulator, its URL .*make serve"
        )
    )
