"""Templates pushed by name, rendered; flows from a definition file, their status and preview."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from kbridge.api import AsyncClient
from kbridge.api.filter_builder import F
from kbridge.api.resources import NewEvent
from kbridge.campaigns import (
    DefinitionError,
    MissingScopesError,
    create_flow,
    preview_flow,
    push_template,
    render_template,
    set_flow_status,
)
from kbridge.campaigns.flows import PREVIEW_LIST
from kbridge.core import ManualClock
from kbridge.emulator import EmulatorServer

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

THANKS = "<p>Thanks {{ first_name|default:'friend' }} for order {{ event.OrderId }}!</p>"


async def test_push_creates_then_updates_by_name_and_is_idempotent(client: AsyncClient) -> None:
    first = await push_template(client, name="Receipt", html="<p>v1</p>")
    assert first.action == "created"
    again = await push_template(client, name="Receipt", html="<p>v1</p>")
    assert (again.id, again.action) == (first.id, "unchanged")
    changed = await push_template(client, name="Receipt", html="<p>v2</p>", text="v2")
    assert (changed.id, changed.action) == (first.id, "updated")
    stored = await client.templates.get_template(first.id)
    assert (stored.attributes["html"], stored.attributes["text"]) == ("<p>v2</p>", "v2")
    named = [
        t.id async for t in client.templates.iter_templates(filter=F.equals("name", "Receipt"))
    ]
    assert named == [first.id]


async def test_render_fills_the_context(client: AsyncClient) -> None:
    pushed = await push_template(client, name="Render me", html=THANKS)
    done = await render_template(client, pushed.id, {"first_name": "Ada", "event": {"OrderId": 7}})
    assert done.html is not None
    assert "Thanks Ada for order 7!" in done.html


async def _subscribed_profile(client: AsyncClient) -> Any:
    async for p in client.profiles.iter_profiles(additional_fields={"profile": ["subscriptions"]}):
        consent = (p.attributes.get("subscriptions") or {}).get("email", {}).get("marketing", {})
        if consent.get("can_receive_email_marketing") is True:
            return p
    raise AssertionError("the seeded account has a subscribed profile")


async def test_flow_from_a_file_goes_live_and_previews_its_first_email(
    client: AsyncClient, control: httpx.AsyncClient, clock: ManualClock
) -> None:
    sender = "flows@northwind.example"
    (await control.post("/_emulator/senders", json={"email": sender})).raise_for_status()
    await push_template(client, name="Thanks", html=THANKS)
    flow = await create_flow(
        client,
        {
            "name": "Thank you",
            "trigger": {"metric": "Placed Order"},
            "actions": [
                {"type": "time-delay", "hours": 1},
                {
                    "type": "send-email",
                    "template": "Thanks",
                    "subject": "Thank you for your order",
                    "from_email": sender,
                    "from_label": "Northwind",
                },
            ],
        },
    )
    assert flow.status == "draft"
    stored = await client.flows.get_flow(flow.id, additional_fields={"flow": ["definition"]})
    kinds = [a["type"] for a in stored.attributes["definition"]["actions"]]
    assert kinds == ["time-delay", "send-email"]
    assert (await set_flow_status(client, flow.id, "live")).status == "live"

    tester = await _subscribed_profile(client)
    await client.events.create_event(
        NewEvent(metric="Placed Order", profile={"email": "buyer@northwind.example"},
                 properties={"OrderId": "A-1001"}, value=25.0)
    )  # fmt: skip
    result = await preview_flow(client, flow.id, to=tester.attributes["email"], clock=clock)
    assert result.status in ("Sending", "Sent")
    assert result.event_id is not None
    (await control.post("/_emulator/clock", json={"advance_seconds": 1})).raise_for_status()
    outbox = (
        await control.get("/_emulator/outbox", params={"campaign_id": result.campaign_id})
    ).json()
    (message,) = outbox["messages"]
    assert message["to"] == tester.attributes["email"]
    assert message["subject"] == "[Preview] Thank you for your order"
    assert "for order A-1001!" in message["html"]
    first = tester.attributes.get("first_name") or "friend"
    assert f"Thanks {first}" in message["html"]

    # a second preview reuses the one-member list
    again = await preview_flow(client, flow.id, to=tester.attributes["email"], clock=clock)
    assert again.campaign_id != result.campaign_id
    lists = await client.lists.get_lists(filter=F.any("name", [PREVIEW_LIST]))
    assert len(lists) == 1
    members = await client.lists.get_profiles_for_list(str(lists[0].id))
    assert [m.id for m in members] == [tester.id]


async def test_definition_errors_name_the_field(client: AsyncClient) -> None:
    with pytest.raises(DefinitionError, match=r"trigger\.metric: .*'Nope'"):
        await create_flow(
            client,
            {
                "name": "x",
                "trigger": {"metric": "Nope"},
                "actions": [{"type": "time-delay", "days": 1}],
            },
        )
    with pytest.raises(DefinitionError, match="no template named 'Missing'"):
        await create_flow(
            client,
            {
                "name": "x",
                "trigger": {"metric": "Placed Order"},
                "actions": [{"type": "send-email", "template": "Missing", "subject": "s",
                             "from_email": "a@b.example"}],
            },
        )  # fmt: skip


async def test_flow_status_without_the_scope_names_it(
    server: EmulatorServer, client: AsyncClient, control: httpx.AsyncClient
) -> None:
    key = (await control.post("/_emulator/keys", json={"scopes": ["flows:read"]})).json()["key"]
    some = (await client.flows.get_flows())[0]
    async with AsyncClient(key, base_url=server.base_url) as narrow:
        with pytest.raises(MissingScopesError, match="flows:write"):
            await set_flow_status(narrow, str(some.id), "live")
