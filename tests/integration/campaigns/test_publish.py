"""Campaign publishing against the emulator: the whole life of a campaign, then each error.

publish → Scheduled → cancel; publish → revert → schedule again → clock
advanced → Sent, and the performance report equals what the emulator's
events imply (counted here from the events API, not from the report).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from kbridge.api import AsyncClient
from kbridge.api.filter_builder import F
from kbridge.campaigns import (
    AudienceEmptyError,
    InvalidKeyError,
    MissingScopesError,
    PublishRequest,
    SenderNotVerifiedError,
    SendTimeInPastError,
    campaign_performance,
    campaign_status,
    cancel,
    publish,
    revert,
    schedule,
)
from kbridge.core import ManualClock
from kbridge.emulator import EmulatorServer
from tests.integration.campaigns.conftest import advance, emulator_now

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

SENDER = "store@northwind.example"
HTML = "<html><body><p>Hi {{ first_name|default:'friend' }}, our sale starts now.</p></body></html>"


async def subscribed_list(client: AsyncClient, name: str, size: int = 25) -> str:
    """A new list of ``size`` profiles that can receive email marketing."""
    chosen = []
    async for p in client.profiles.iter_profiles(additional_fields={"profile": ["subscriptions"]}):
        marketing = ((p.attributes.get("subscriptions") or {}).get("email") or {}).get(
            "marketing"
        ) or {}
        if marketing.get("can_receive_email_marketing") is True and p.id:
            chosen.append(p.id)
        if len(chosen) == size:
            break
    assert len(chosen) >= 5, "the seeded account should have subscribed profiles"
    made = await client.lists.create_list(name=name)
    assert made.id is not None
    await client.lists.add_profiles_to_list(made.id, profile_ids=chosen)
    return made.id


def request(list_id: str, **changes: Any) -> PublishRequest:
    values: dict[str, Any] = {
        "name": "Winter sale",
        "included": [list_id],
        "subject": "The winter sale is on",
        "from_email": SENDER,
        "from_label": "Northwind",
        "html": HTML,
        "smart_sending": False,
    }
    values.update(changes)
    return PublishRequest(**values)


@pytest.fixture
async def verified_sender(control: httpx.AsyncClient) -> str:
    (await control.post("/_emulator/senders", json={"email": SENDER})).raise_for_status()
    return SENDER


async def _events_of(client: AsyncClient, since: datetime) -> dict[str, list[Any]]:
    names = {m.id: m.attributes["name"] async for m in client.metrics.iter_metrics()}
    by_metric: dict[str, list[Any]] = {}
    async for e in client.events.iter_events(
        filter=F.greater_or_equal("datetime", since), include=["metric"]
    ):
        metric = e.relationships["metric"]["data"]["id"]
        by_metric.setdefault(names[metric], []).append(e)
    return by_metric


async def test_publish_cancel_revert_schedule_send_and_performance(
    client: AsyncClient, control: httpx.AsyncClient, clock: ManualClock, verified_sender: str
) -> None:
    list_id = await subscribed_list(client, "Winter sale audience", size=150)
    start = await emulator_now(control)

    options = {"local_time": True, "track_clicks": False, "utm": {"utm_source": "kbridge"}}
    first_at = start + timedelta(hours=1)
    first = await publish(client, request(list_id, send_at=first_at, **options), clock=clock)
    assert first.status == "Scheduled"
    assert len(first.message_ids) == 1
    stored = (await client.campaigns.get_campaign(first.id)).attributes
    assert stored["send_strategy"]["options"]["is_local"] is True
    assert stored["tracking_options"]["is_tracking_clicks"] is False
    assert stored["tracking_options"]["custom_tracking_params"] == [
        {"type": "static", "value": "kbridge", "name": "utm_source"}
    ]
    assert stored["send_options"] == {"use_smart_sending": False}
    cancelled = await cancel(client, first.id)
    assert cancelled.status == "Cancelled"
    assert cancelled.problem is not None

    second = await publish(
        client, request(list_id, send_at=start + timedelta(hours=2)), clock=clock
    )
    assert second.status == "Scheduled"
    assert (await revert(client, second.id)).status == "Draft"
    again = await schedule(client, second.id, send_at=start + timedelta(hours=3), clock=clock)
    assert again.status == "Scheduled"
    assert again.send_time is not None
    assert again.send_time.startswith((start + timedelta(hours=3)).strftime("%Y-%m-%dT%H"))

    await advance(control, 3 * 3600 + 60)
    sent = await campaign_status(client, second.id)
    assert sent.status == "Sent"
    outbox = (await control.get("/_emulator/outbox", params={"campaign_id": second.id})).json()
    delivered = len(outbox["messages"])
    assert delivered > 20  # the subscribed profiles, less anyone suppressed
    assert "our sale starts now" in outbox["messages"][0]["html"]
    assert (await control.get("/_emulator/outbox", params={"campaign_id": first.id})).json()[
        "messages"
    ] == []

    # opens within 6 h, orders within ~2 days of them: let it all happen
    await advance(control, 3 * 86400)
    since = start - timedelta(minutes=1)
    report = await campaign_performance(
        client, [second.id], since=since, until=start + timedelta(days=5), clock=clock
    )
    (row,) = report.rows
    both = await campaign_performance(
        client, [first.id, second.id], since=since, until=start + timedelta(days=5), clock=clock
    )
    assert both.rows == report.rows  # the cancelled one sent nothing; no other campaign leaks in
    assert row.campaign_id == second.id
    assert row.campaign_message_id == second.message_ids[0]

    events = await _events_of(client, since.replace(microsecond=0))
    mid = row.campaign_message_id

    def mine(metric: str, key: str = "$message") -> list[Any]:
        return [
            e for e in events.get(metric, []) if e.attributes["event_properties"].get(key) == mid
        ]

    received, opened, clicked = mine("Received Email"), mine("Opened Email"), mine("Clicked Email")
    orders = mine("Placed Order", "$attributed_message")
    assert row.get("recipients") == row.get("delivered") == len(received) == delivered
    assert row.get("opens") == len(opened) > 0
    unique_opens = len({e.relationships["profile"]["data"]["id"] for e in opened})
    assert row.get("opens_unique") == unique_opens
    assert row.get("open_rate") == round(unique_opens / delivered, 4)
    assert row.get("clicks") == len(clicked)
    unique_clicks = len({e.relationships["profile"]["data"]["id"] for e in clicked})
    assert row.get("click_rate") == round(unique_clicks / delivered, 4)
    assert row.get("conversions") == len(orders) > 0
    revenue = sum(float(e.attributes["event_properties"]["$value"]) for e in orders)
    assert row.get("conversion_value") == pytest.approx(round(revenue, 2))
    assert Counter(e.attributes["event_properties"]["Campaign Name"] for e in opened) == {
        "Winter sale": len(opened)
    }


async def test_rescheduling_a_reverted_campaign_keeps_local_time(
    client: AsyncClient, control: httpx.AsyncClient, clock: ManualClock, verified_sender: str
) -> None:
    list_id = await subscribed_list(client, "Local time audience", size=5)
    start = await emulator_now(control)
    made = await publish(
        client,
        request(list_id, send_at=start + timedelta(days=1), local_time=True),
        clock=clock,
    )
    await revert(client, made.id)
    moved = await schedule(client, made.id, send_at=start + timedelta(days=2), clock=clock)
    assert moved.status == "Scheduled"
    stored = (await client.campaigns.get_campaign(made.id)).attributes["send_strategy"]
    assert stored["options"]["is_local"] is True
    assert stored["datetime"].startswith((start + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"))
    with pytest.raises(SendTimeInPastError):
        await schedule(client, made.id, send_at=start - timedelta(hours=1), clock=clock)
    assert (await cancel(client, made.id)).status == "Cancelled"


async def test_a_draft_from_a_template_is_made_but_not_sent_until_scheduled(
    client: AsyncClient, control: httpx.AsyncClient, clock: ManualClock, verified_sender: str
) -> None:
    list_id = await subscribed_list(client, "Draft audience", size=5)
    made_template = await client.templates.create_template(name="Draft body", html=HTML)
    assert made_template.id is not None
    start = await emulator_now(control)
    at = start + timedelta(days=1)
    draft = await publish(
        client,
        request(list_id, html=None, template_id=made_template.id, send_at=at, draft=True),
        clock=clock,
    )
    assert draft.status == "Draft"
    assert draft.send_time is None  # Klaviyo gives a send time only to a queued send
    stored = (await client.campaigns.get_campaign(draft.id)).attributes
    assert stored["send_strategy"]["datetime"].startswith(at.strftime("%Y-%m-%dT%H:%M"))
    scheduled = await schedule(client, draft.id, clock=clock)
    assert scheduled.status == "Scheduled"
    assert scheduled.send_time is not None
    assert scheduled.send_time.startswith(at.strftime("%Y-%m-%dT%H:%M"))


async def test_send_time_in_the_past_is_refused_before_anything_is_created(
    client: AsyncClient, control: httpx.AsyncClient, clock: ManualClock
) -> None:
    before = len(await client.campaigns.get_campaigns(channel="email"))
    with pytest.raises(SendTimeInPastError, match="in the past"):
        await publish(
            client, request("any-list", send_at=clock.now() - timedelta(minutes=5)), clock=clock
        )
    assert len(await client.campaigns.get_campaigns(channel="email")) == before


async def test_an_unverified_sender_is_named_with_what_to_configure(
    client: AsyncClient, clock: ManualClock
) -> None:
    list_id = await subscribed_list(client, "Sender test audience", size=5)
    with pytest.raises(SenderNotVerifiedError) as caught:
        await publish(client, request(list_id, from_email="nobody@unverified.example"), clock=clock)
    assert "nobody@unverified.example" in str(caught.value)
    assert "verify" in str(caught.value)
    state = await campaign_status(client, caught.value.campaign_id)
    assert state.status == "Cancelled: Misconfigured"


async def test_an_empty_audience_fails_and_leaves_no_draft(
    client: AsyncClient, clock: ManualClock, verified_sender: str
) -> None:
    empty = await client.lists.create_list(name="Nobody here")
    assert empty.id is not None
    with pytest.raises(AudienceEmptyError) as caught:
        await publish(client, request(empty.id, name="To nobody"), clock=clock)
    assert empty.id in str(caught.value)
    names = [c.attributes["name"] for c in await client.campaigns.get_campaigns(channel="email")]
    assert "To nobody" not in names


async def test_a_revoked_key_is_one_clear_error(server: EmulatorServer, clock: ManualClock) -> None:
    async with AsyncClient("pk_" + "x" * 34, base_url=server.base_url) as bad:
        with pytest.raises(InvalidKeyError, match="wrong or has been revoked") as caught:
            await publish(bad, request("any-list"), clock=clock)
    assert "pk_" not in str(caught.value)


async def test_missing_scopes_are_named(
    server: EmulatorServer, control: httpx.AsyncClient, clock: ManualClock
) -> None:
    key = (await control.post("/_emulator/keys", json={"scopes": ["campaigns:read"]})).json()["key"]
    async with AsyncClient(key, base_url=server.base_url) as narrow:
        with pytest.raises(MissingScopesError) as caught:
            await publish(narrow, request("any-list"), clock=clock)
    assert caught.value.missing == ("campaigns:write",)
    assert set(caught.value.needed) == {"campaigns:read", "campaigns:write", "templates:write"}
    assert "campaigns:write" in str(caught.value)
