"""The MCP server in process, driven by the SDK's client: token expiry on an injected clock,
many connections, hints on the wire, the warehouse's timeout."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from mcp import Client
from mcp_types import CallToolResult

from kbridge.agent import AccountConfig, AgentConfig, build_server
from kbridge.core import ManualClock
from kbridge.emulator import EmulatorServer
from kbridge.testing.plugin import DEFAULT_TEST_CONFIG, http_client_for

pytestmark = pytest.mark.integration

CONFIG = replace(DEFAULT_TEST_CONFIG, seed=31, deletion_delay_seconds=0)
CEILING = 30 * 1024


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(CONFIG) as running:
        yield running


def _account(
    server: EmulatorServer, name: str = "default", key: str | None = None
) -> AccountConfig:
    return AccountConfig(name, {"api_key": key or server.api_key, "base_url": server.base_url})


def _json(result: CallToolResult) -> Any:
    assert not result.is_error, result.content
    return json.loads(result.content[0].text)  # type: ignore[union-attr]


def _error(result: CallToolResult) -> str:
    assert result.is_error
    text: str = result.content[0].text  # type: ignore[union-attr]
    assert "\n" not in text
    return text


def _email(server: EmulatorServer, n: int) -> str:
    with http_client_for(server) as http:
        found = http.get("/api/profiles", params={"page[size]": n + 1}).json()["data"]
    email: str = found[n]["attributes"]["email"]
    return email


def test_a_confirm_token_expires_on_the_clock_and_serves_only_its_person(
    server: EmulatorServer,
) -> None:
    clock = ManualClock()
    config = AgentConfig(accounts=[_account(server)], clock=clock, token_ttl=300)
    one, other = _email(server, 1), _email(server, 2)

    async def go() -> None:
        async with Client(build_server(config)) as client:
            asked = _json(await client.call_tool("privacy_delete", {"email": one}))
            token = asked["confirm_token"]
            assert asked["expires_in_seconds"] == 300
            clock.advance(301)
            expired = _error(
                await client.call_tool("privacy_delete", {"email": one, "confirm_token": token})
            )
            assert "expired" in expired
            fresh = _json(await client.call_tool("privacy_delete", {"email": one}))
            misused = _error(
                await client.call_tool(
                    "privacy_delete", {"email": other, "confirm_token": fresh["confirm_token"]}
                )
            )
            assert "another person" in misused
            # neither refusal deleted anybody
            for email in (one, other):
                still = _json(await client.call_tool("privacy_delete", {"email": email}))
                assert len(still["matched_profiles"]) == 1

    asyncio.run(go())


def test_with_many_connections_every_tool_takes_one(server: EmulatorServer) -> None:
    narrow = httpx.post(
        f"{server.base_url}/_emulator/keys", json={"scopes": ["accounts:read", "profiles:read"]}
    ).json()["key"]
    config = AgentConfig(
        accounts=[_account(server, "full"), _account(server, "narrow", narrow)],
        warehouse_url="duckdb:///unused.duckdb",
        secrets=(server.api_key, narrow),
    )

    async def go() -> None:
        async with Client(build_server(config)) as client:
            tools = await client.list_tools()
            assert len(tools.tools) >= 40
            assert len(tools.model_dump_json(by_alias=True, exclude_none=True)) <= CEILING
            for tool in tools.tools:
                assert "connection" in tool.input_schema["properties"], tool.name
                assert "connection" in tool.input_schema["required"], tool.name
            # a tool one key lacks the scopes for stays listed for the other, refused for it
            assert "lists_list" in {t.name for t in tools.tools}
            assert _json(await client.call_tool("lists_list", {"connection": "full"}))["count"]
            refused = _error(await client.call_tool("lists_list", {"connection": "narrow"}))
            assert "lacks the scope" in refused
            unnamed = _error(await client.call_tool("profiles_list", {}))
            assert "connection" in unnamed
            assert "full" in unnamed
            unknown = _error(await client.call_tool("profiles_list", {"connection": "nope"}))
            assert "no connection" in unknown
            assert narrow not in refused + unnamed + unknown

    asyncio.run(go())


def test_hints_on_the_wire_are_truthful(server: EmulatorServer) -> None:
    config = AgentConfig(accounts=[_account(server)], warehouse_url="duckdb:///unused.duckdb")

    async def go() -> None:
        async with Client(build_server(config)) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
        read = tools["profiles_list"].annotations
        assert read is not None
        assert read.read_only_hint is True
        delete = tools["lists_delete"].annotations
        assert delete is not None
        # MCP's defaults (not read-only, destructive) are left unsaid: a smaller tools/list
        assert (delete.read_only_hint, delete.destructive_hint, delete.idempotent_hint) == (
            None,
            None,
            True,
        )
        create = tools["profiles_create"].annotations
        assert create is not None
        assert create.destructive_hint is False
        assert create.idempotent_hint is None  # MCP's default: not idempotent
        sql = tools["warehouse_sql"].annotations
        assert sql is not None
        assert sql.read_only_hint is True
        assert sql.open_world_hint is False
        erase = tools["privacy_delete"].annotations
        assert erase is not None
        assert erase.read_only_hint is None  # MCP's defaults: a write, destructive
        assert erase.destructive_hint is None
        publish = tools["campaign_publish"].annotations
        assert publish is not None
        assert publish.idempotent_hint is None

    asyncio.run(go())


def test_a_long_warehouse_query_is_stopped_at_its_timeout(
    server: EmulatorServer, tmp_path: Path
) -> None:
    path = tmp_path / "kb.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE profiles AS SELECT 'acct' AS account_id, 'p1' AS id")
    config = AgentConfig(
        accounts=[_account(server)], warehouse_url=f"duckdb:///{path}", query_timeout=0.2
    )
    # minutes of work on any machine: only the timeout can end it
    endless = (
        "SELECT count(*) FROM range(100000000) a, range(100000000) b WHERE a.range + b.range < 0"
    )

    async def go() -> None:
        async with Client(build_server(config)) as client:
            stopped = _error(await client.call_tool("warehouse_sql", {"sql": endless}))
            assert "timeout" in stopped
            quick = _json(
                await client.call_tool("warehouse_sql", {"sql": "SELECT id FROM profiles"})
            )
            assert quick["rows"] == [["p1"]]

    asyncio.run(go())
