"""``kbridge mcp`` as an MCP client runs it: spawned over stdio, or served over streamable HTTP,
driven by the ``mcp`` SDK's own client against the emulator."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp_types import CallToolResult

from kbridge import sync
from kbridge.api import AsyncClient
from kbridge.emulator import EmulatorServer
from kbridge.testing.plugin import DEFAULT_TEST_CONFIG
from kbridge.warehouse import open_warehouse

pytestmark = pytest.mark.e2e

KBRIDGE = str(Path(sys.executable).with_name("kbridge"))
#: deletions finish on the next request, so privacy_delete's first check confirms them
CONFIG = replace(DEFAULT_TEST_CONFIG, seed=23, deletion_delay_seconds=0)
CEILING = 30 * 1024


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(CONFIG) as running:
        yield running


@pytest.fixture(scope="module")
def warehouse(server: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The emulator account synced into a DuckDB file; its URL."""
    return _synced(server, tmp_path_factory.mktemp("wh") / "kb.duckdb")


def _synced(server: EmulatorServer, path: Path) -> str:
    url = f"duckdb:///{path}"
    wh = open_warehouse(url)

    async def run() -> None:
        async with AsyncClient(server.api_key, base_url=server.base_url) as client:
            await sync.run(client, wh, streams=["profiles", "metrics", "events", "campaigns"])

    try:
        asyncio.run(run())
    finally:
        wh.close()
    return url


def _env(server: EmulatorServer, home: Path, key: str | None = None) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KBRIDGE_", "KLAVIYO_"))}
    return {
        **clean,
        "KBRIDGE_HOME": str(home),
        "KLAVIYO_BASE_URL": server.base_url,
        "KLAVIYO_API_KEY": key or server.api_key,
    }


def _stdio(env: dict[str, str], *args: str) -> Client:
    return Client(StdioServerParameters(command=KBRIDGE, args=["mcp", *args], env=env))


def _json(result: CallToolResult) -> Any:
    assert not result.is_error, result.content
    return json.loads(result.content[0].text)  # type: ignore[union-attr]


def _error(result: CallToolResult) -> str:
    assert result.is_error
    text: str = result.content[0].text  # type: ignore[union-attr]
    assert "\n" not in text
    assert "Traceback" not in text
    return text


def _size(tools: Any) -> int:
    return len(tools.model_dump_json(by_alias=True, exclude_none=True).encode())


def test_stdio_lists_tools_within_the_ceiling_and_calls_reads(
    server: EmulatorServer, tmp_path: Path, warehouse: str
) -> None:
    async def go() -> None:
        async with _stdio(_env(server, tmp_path), "--warehouse", warehouse) as client:
            tools = await client.list_tools()
            names = {t.name for t in tools.tools}
            assert len(names) >= 40
            assert {"profiles_list", "privacy_delete", "warehouse_sql", "scopes"} <= names
            assert "data_privacy_request_deletion" not in names  # privacy_delete guards it
            assert _size(tools) <= CEILING
            listed = _json(await client.call_tool("profiles_list", {"limit": 3}))
            assert listed["count"] == 3
            assert listed["more"] is True
            assert all(item["type"] == "profile" for item in listed["items"])
            one = _json(await client.call_tool("profiles_get", {"id": listed["items"][0]["id"]}))
            assert one["id"] == listed["items"][0]["id"]
            scopes = _json(await client.call_tool("scopes", {}))
            assert scopes["missing_scopes"] == []
            assert scopes["hidden_tools"] == {}
            # secrets never come back, in answers or errors
            bad = _error(await client.call_tool("profiles_get", {"id": "nope"}))
            assert server.api_key not in bad
            assert server.api_key not in json.dumps(scopes)

    asyncio.run(go())


def test_stdio_warehouse_reads_and_refuses_writes(
    server: EmulatorServer, tmp_path: Path, warehouse: str
) -> None:
    async def go() -> None:
        async with _stdio(_env(server, tmp_path), "--warehouse", warehouse) as client:
            counted = _json(
                await client.call_tool("warehouse_sql", {"sql": "SELECT count(*) FROM profiles"})
            )
            assert counted["rows"] == [[CONFIG.profiles]]
            capped = _json(
                await client.call_tool(
                    "warehouse_sql", {"sql": "SELECT id FROM profiles", "max_rows": 5}
                )
            )
            assert len(capped["rows"]) == 5
            assert capped["truncated"] is True
            for write in (
                "DELETE FROM profiles",
                "CREATE TABLE x AS SELECT 1",
                f"COPY profiles TO '{tmp_path / 'out.csv'}'",
                "SELECT * FROM read_text('/etc/hostname')",
            ):
                refused = _error(await client.call_tool("warehouse_sql", {"sql": write}))
                assert "refused" in refused, (write, refused)
            assert not (tmp_path / "out.csv").exists()
            after = _json(
                await client.call_tool("warehouse_sql", {"sql": "SELECT count(*) FROM profiles"})
            )
            assert after["rows"] == [[CONFIG.profiles]]
            stages = _json(await client.call_tool("analytics_lifecycle", {}))
            assert sum(s["profiles"] for s in stages["stages"]) == CONFIG.profiles
            risks = _json(await client.call_tool("analytics_churn_top_risks", {"top": 3}))
            chances = [r["churn_probability"] for r in risks["top_risks"]["rows"]]
            assert len(chances) == 3
            assert chances == sorted(chances, reverse=True)
            consent = _json(await client.call_tool("analytics_consent", {}))
            email = [r for r in consent["current"] if r["channel"] == "email"]
            assert sum(r["profiles"] for r in email) == CONFIG.profiles
            messages = _json(await client.call_tool("analytics_campaign_performance", {"top": 2}))
            assert len(messages["messages"]["rows"]) <= 2
            products = _json(await client.call_tool("analytics_top_products", {"top": 3}))
            assert len(products["overall"]["rows"]) == 3
            # the catalogue streams were not synced: every line is counted, none matched
            assert products["overall"]["lines"] == products["overall"]["unmatched_lines"] > 0
            per_segment = Counter(r["segment"] for r in products["by_segment"])
            assert per_segment
            assert max(per_segment.values()) <= 3

    asyncio.run(go())


def test_stdio_deletion_takes_two_steps(server: EmulatorServer, tmp_path: Path) -> None:
    own = _synced(server, tmp_path / "purged.duckdb")
    count = {"sql": "SELECT count(*) FROM profiles"}

    async def go() -> None:
        async with _stdio(_env(server, tmp_path), "--warehouse", own) as client:
            before = _json(await client.call_tool("warehouse_sql", count))["rows"][0][0]
            first = _json(await client.call_tool("profiles_list", {"limit": 1}))["items"][0]
            email = first["attributes"]["email"]
            report = _json(await client.call_tool("privacy_access", {"email": email}))
            assert report["status"] == "reported"
            assert report["profile_ids"] == [first["id"]]
            asked = _json(await client.call_tool("privacy_delete", {"email": email}))
            assert asked["deleted"] is False
            assert [m["id"] for m in asked["matched_profiles"]] == [first["id"]]
            # nothing is deleted by the dry run
            still = _json(await client.call_tool("profiles_get", {"id": first["id"]}))
            assert still["id"] == first["id"]
            wrong = _error(
                await client.call_tool(
                    "privacy_delete", {"email": email, "confirm_token": "not-the-token"}
                )
            )
            assert "confirm_token" in wrong
            done = _json(
                await client.call_tool(
                    "privacy_delete", {"email": email, "confirm_token": asked["confirm_token"]}
                )
            )
            assert done["deleted"] is True
            assert done["outcome"] == "confirmed"
            assert done["profile_ids"] == [first["id"]]
            assert done["warehouse_purged"] == 1
            after = _json(await client.call_tool("warehouse_sql", count))["rows"][0][0]
            assert after == before - 1
            gone = _error(await client.call_tool("profiles_get", {"id": first["id"]}))
            assert "404" in gone
            again = _error(
                await client.call_tool(
                    "privacy_delete", {"email": email, "confirm_token": asked["confirm_token"]}
                )
            )
            assert "already used" in again

    asyncio.run(go())


def test_read_only_hides_and_refuses_every_write(server: EmulatorServer, tmp_path: Path) -> None:
    async def go() -> None:
        async with _stdio(_env(server, tmp_path), "--read-only") as client:
            tools = (await client.list_tools()).tools
            assert tools
            assert all(t.annotations and t.annotations.read_only_hint for t in tools)
            assert "privacy_delete" not in {t.name for t in tools}
            refused = _error(await client.call_tool("lists_create", {"name": "nope"}))
            assert "read-only" in refused
            names = _json(await client.call_tool("lists_list", {"limit": 200}))
            assert "nope" not in {i["attributes"]["name"] for i in names["items"]}

    asyncio.run(go())


def test_tools_the_key_lacks_scopes_for_are_hidden(server: EmulatorServer, tmp_path: Path) -> None:
    minted = httpx.post(
        f"{server.base_url}/_emulator/keys",
        json={"scopes": ["accounts:read", "profiles:read"]},
        timeout=10,
    )
    assert minted.status_code == 201, minted.text
    key = minted.json()["key"]

    async def go() -> None:
        async with _stdio(_env(server, tmp_path, key)) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert {"profiles_list", "profiles_get", "accounts_list"} <= names
            assert not {"lists_list", "campaigns_list", "profiles_create"} & names
            refused = _error(await client.call_tool("lists_list", {}))
            assert "lacks the scope" in refused
            assert "lists:read" in refused
            scopes = _json(await client.call_tool("scopes", {}))
            assert "lists:read" in scopes["missing_scopes"]
            assert key not in json.dumps(scopes)
            assert key not in refused

    asyncio.run(go())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_streamable_http_serves_the_same_tools(server: EmulatorServer, tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [KBRIDGE, "mcp", "--transport", "http", "--port", str(port)],
        env=_env(server, tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for(port, proc)

        async def go() -> None:
            async with Client(f"http://127.0.0.1:{port}/mcp") as client:
                tools = await client.list_tools()
                assert len(tools.tools) >= 40
                assert _size(tools) <= CEILING
                listed = _json(await client.call_tool("segments_list", {"limit": 2}))
                assert listed["count"] == 2
                missing = _error(await client.call_tool("segments_delete", {"id": "nope"}))
                assert "404" in missing

        asyncio.run(go())
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def _wait_for(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode() if proc.stderr else "exited")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError("kbridge mcp --transport http did not start")
