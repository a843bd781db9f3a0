"""Bulk work splits at Klaviyo's per-request maximums and runs concurrently under the limiter."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from kbridge.api import InvalidRequestError
from kbridge.api.resources import NewEvent
from kbridge.core import ManualClock
from kbridge.core.jsoncodec import loads

from ._support import Server, client, error

pytestmark = pytest.mark.unit


def _bodies(server: Server) -> list[Any]:
    return [loads(r.content) for r in server.requests]


@pytest.mark.anyio
async def test_list_membership_goes_1000_ids_per_request() -> None:
    server = Server(ManualClock(), respond=lambda r: httpx.Response(204))
    done: list[int] = []
    async with client(server) as c:
        ids = [f"p{i}" for i in range(2500)] + ["p0"]  # a duplicate is sent once
        assert (
            await c.lists.add_profiles_to_list("L1", profile_ids=ids, progress=done.append) == 2500
        )
    sizes = sorted(len(b["data"]) for b in _bodies(server))
    assert sizes == [500, 1000, 1000]
    assert sorted(done) == [500, 1000, 1000]
    assert {r.url.path for r in server.requests} == {"/api/lists/L1/relationships/profiles"}
    sent = sorted(i["id"] for b in _bodies(server) for i in b["data"])
    assert sent == sorted(f"p{i}" for i in range(2500))


@pytest.mark.anyio
async def test_subscribe_goes_1000_and_unsubscribe_100_per_job() -> None:
    server = Server(ManualClock(), respond=lambda r: httpx.Response(202))
    emails = [f"u{i}@example.com" for i in range(1500)]
    async with client(server) as c:
        await c.subscriptions.bulk_subscribe_profiles(emails, list_id="L1")
        subscribe = sorted(
            len(b["data"]["attributes"]["profiles"]["data"]) for b in _bodies(server)
        )
        assert subscribe == [500, 1000]
        first = _bodies(server)[0]["data"]
        assert first["relationships"]["list"]["data"] == {"type": "list", "id": "L1"}
        server.requests.clear()
        await c.subscriptions.bulk_unsubscribe_profiles(emails[:250])
    unsubscribe = sorted(len(b["data"]["attributes"]["profiles"]["data"]) for b in _bodies(server))
    assert unsubscribe == [50, 100, 100]
    consent = _bodies(server)[0]["data"]["attributes"]["profiles"]["data"][0]["attributes"]
    assert consent["subscriptions"] == {"email": {"marketing": {"consent": "UNSUBSCRIBED"}}}


@pytest.mark.anyio
async def test_sms_consent_needs_a_phone_number() -> None:
    server = Server(ManualClock(), respond=lambda r: httpx.Response(202))
    async with client(server) as c:
        await c.subscriptions.bulk_subscribe_profiles(["+15005550006"], channels=["sms"])
        profile = _bodies(server)[0]["data"]["attributes"]["profiles"]["data"][0]["attributes"]
        assert profile["subscriptions"] == {"sms": {"marketing": {"consent": "SUBSCRIBED"}}}
        with pytest.raises(Exception, match=r"profiles\[0\]"):
            await c.subscriptions.bulk_subscribe_profiles(["a@b.co"], channels=["sms"])


@pytest.mark.anyio
async def test_bulk_events_go_1000_per_job_and_all_are_validated_first() -> None:
    server = Server(ManualClock(), respond=lambda r: httpx.Response(202))
    events = [NewEvent(metric="M", profile={"email": f"e{i % 3}@x.co"}) for i in range(1001)]
    async with client(server) as c:
        await c.events.bulk_create_events(events)
        per_job = sorted(
            sum(
                len(item["attributes"]["events"]["data"])
                for item in b["data"]["attributes"]["events-bulk-create"]["data"]
            )
            for b in _bodies(server)
        )
        assert per_job == [1, 1000]
        server.requests.clear()
        bad = [*events, NewEvent(metric="M", profile={"email": "nope"})]
        with pytest.raises(Exception, match=r"events\[1001\]\.profile\.email"):
            await c.events.bulk_create_events(bad)
    assert server.requests == []  # nothing half-sent


@pytest.mark.anyio
async def test_a_failing_chunk_raises_its_own_error_not_a_group() -> None:
    calls = {"n": 0}

    def respond(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        return (
            error(400, "invalid", "profile does not exist")
            if calls["n"] == 2
            else (httpx.Response(204))
        )

    server = Server(ManualClock(), respond=respond)
    async with client(server) as c:
        with pytest.raises(InvalidRequestError, match="profile does not exist"):
            await c.lists.add_profiles_to_list("L", profile_ids=[f"p{i}" for i in range(3000)])
