"""Campaign tools through MCP: each write is a dry run unless ``dry_run: false``, and a dry run
changes nothing (the campaign's status is read back after each)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from mcp import Client
from mcp_types import CallToolResult

from kbridge.agent import AccountConfig, AgentConfig, build_server
from kbridge.core import ManualClock
from kbridge.emulator import EmulatorConfig, EmulatorServer

pytestmark = pytest.mark.integration

SENDER = "store@northwind.example"
HTML = "<html><body><p>Our sale starts now.</p></body></html>"


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    config = EmulatorConfig(seed=7, profiles=120, events=300, rate_limit_factor=None)
    with EmulatorServer(config) as running:
        httpx.post(
            f"{running.base_url}/_emulator/senders", json={"email": SENDER}
        ).raise_for_status()
        yield running


def _json(result: CallToolResult) -> Any:
    assert not result.is_error, result.content
    return json.loads(result.content[0].text)  # type: ignore[union-attr]


async def _audience(client: Client) -> str:
    """A new list of profiles that can receive email marketing."""
    found = _json(
        await client.call_tool(
            "profiles_list", {"additional_fields": ["profile=subscriptions"], "limit": 120}
        )
    )
    ids = [
        p["id"]
        for p in found["items"]
        if (
            ((p["attributes"].get("subscriptions") or {}).get("email") or {}).get("marketing") or {}
        ).get("can_receive_email_marketing")
    ]
    assert len(ids) >= 5
    made = _json(await client.call_tool("lists_create", {"name": "MCP audience"}))
    _json(await client.call_tool("lists_add_profiles", {"id": made["id"], "profile_ids": ids}))
    return str(made["id"])


def test_publish_schedule_revert_cancel_each_dry_run_first(server: EmulatorServer) -> None:
    now = datetime.fromisoformat(httpx.get(f"{server.base_url}/_emulator/clock").json()["now"])
    config = AgentConfig(
        accounts=[AccountConfig("d", {"api_key": server.api_key, "base_url": server.base_url})],
        clock=ManualClock(now),
    )

    async def go() -> None:
        async with Client(build_server(config)) as client:

            async def status(campaign: str) -> str:
                found = _json(await client.call_tool("campaign_status", {"campaign_id": campaign}))
                return str(found["status"])

            async def names() -> set[str]:
                found = _json(
                    await client.call_tool("campaigns_list", {"channel": "email", "limit": 200})
                )
                return {c["attributes"]["name"] for c in found["items"]}

            request = {
                "name": "MCP winter sale",
                "included": [await _audience(client)],
                "subject": "The winter sale is on",
                "from_email": SENDER,
                "from_label": "Northwind",
                "html": HTML,
                "send_at": (now + timedelta(hours=2)).isoformat(),
            }
            dry = _json(await client.call_tool("campaign_publish", request))
            assert dry["dry_run"] is True
            assert "create email campaign" in dry["would"]
            assert "MCP winter sale" not in await names()

            made = _json(await client.call_tool("campaign_publish", {**request, "dry_run": False}))
            campaign = made["campaign"]["id"]
            assert made["campaign"]["status"] == "Scheduled"

            for tool, after_dry, after in (
                ("campaign_revert", "Scheduled", "Draft"),
                ("campaign_schedule", "Draft", "Scheduled"),
                ("campaign_cancel", "Scheduled", "Cancelled"),
            ):
                args: dict[str, Any] = {"campaign_id": campaign}
                if tool == "campaign_schedule":
                    args["send_at"] = (now + timedelta(hours=3)).isoformat()
                answer = _json(await client.call_tool(tool, args))
                assert answer["dry_run"] is True
                assert answer["would"]
                assert await status(campaign) == after_dry, tool
                done = _json(await client.call_tool(tool, {**args, "dry_run": False}))
                assert done["campaign"]["status"] == after, tool
                assert await status(campaign) == after, tool

            past = await client.call_tool(
                "campaign_publish", {**request, "send_at": (now - timedelta(hours=1)).isoformat()}
            )
            assert past.is_error
            assert "in the past" in past.content[0].text

    asyncio.run(go())
