"""What a new user tripped on when trying the dashboard (#21): each page says where to go next."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from kbridge.catalog import REVISION

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


def _get(base_url: str, key: str, path: str, **params: str) -> dict[str, Any]:
    reply = httpx.get(
        f"{base_url}{path}",
        params=params,
        headers={
            "Authorization": f"Klaviyo-API-Key {key}",
            "revision": REVISION,
            "accept": "application/vnd.api+json",
        },
        timeout=30.0,
    )
    assert reply.status_code == 200, reply.text
    found: dict[str, Any] = reply.json()
    return found


def test_make_serve_leaves_an_account_to_connect_and_names_a_person_to_delete(
    tmp_path: Path,
) -> None:
    # `make serve` printed no emulator URL and left no account free: a new user could not
    # try the Connections form, nor find a person's email for the Privacy form
    from benchmarks.dashboard import demo

    with demo(1, factor=20.0, data_dir=tmp_path, spare=1) as found:
        assert found.spare_key is not None
        minted = httpx.post(
            f"{found.emulator_url}/_emulator/keys",
            json={"account": 0, "scopes": ["accounts:read", "profiles:read"]},
            timeout=30.0,
        )
        connected_key = minted.json()["key"]
        connected = _get(found.emulator_url, connected_key, "/api/accounts")["data"][0]["id"]
        spare = _get(found.emulator_url, found.spare_key, "/api/accounts")["data"][0]["id"]
        assert spare != connected
        person = _get(
            found.emulator_url,
            connected_key,
            "/api/profiles",
            filter=f'equals(email,"{found.example_email}")',
        )
        assert len(person["data"]) == 1
