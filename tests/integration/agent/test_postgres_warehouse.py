"""warehouse_sql on PostgreSQL: a READ ONLY transaction, one statement a call, a statement
timeout — refusals come from the server, not from reading the SQL."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import psycopg
import pytest
from mcp import Client
from mcp_types import CallToolResult

from kbridge.agent import AccountConfig, AgentConfig, build_server
from kbridge.emulator import EmulatorServer

pytestmark = pytest.mark.integration


def _json(result: CallToolResult) -> Any:
    assert not result.is_error, result.content
    return json.loads(result.content[0].text)  # type: ignore[union-attr]


def _error(result: CallToolResult) -> str:
    assert result.is_error
    text: str = result.content[0].text  # type: ignore[union-attr]
    assert "\n" not in text
    return text


def test_postgres_queries_read_and_never_write(emulator: EmulatorServer, postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute("CREATE TABLE profiles (account_id text, id text)")
        con.execute("INSERT INTO profiles VALUES ('acct', 'p1'), ('acct', 'p2')")
    config = AgentConfig(
        accounts=[AccountConfig("d", {"api_key": emulator.api_key, "base_url": emulator.base_url})],
        warehouse_url=postgres_url,
        query_timeout=0.5,
        probe_scopes=False,
        secrets=(postgres_url,),
    )

    async def go() -> list[str]:
        async with Client(build_server(config)) as client:
            counted = _json(
                await client.call_tool("warehouse_sql", {"sql": "SELECT count(*) FROM profiles"})
            )
            assert counted["rows"] == [[2]]
            like = {"sql": "SELECT id FROM profiles WHERE id LIKE '%1' AND id <> '?'"}
            assert _json(await client.call_tool("warehouse_sql", like))["rows"] == [["p1"]]
            # a session's defaults cannot reopen writes: each call begins READ ONLY itself
            for setting in (
                "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
                "SET default_transaction_read_only = off",
            ):
                await client.call_tool("warehouse_sql", {"sql": setting})
            refusals = []
            for write in (
                "INSERT INTO profiles VALUES ('acct', 'p3')",
                "DELETE FROM profiles",
                "SET TRANSACTION READ WRITE",
                "COMMIT; DELETE FROM profiles",
                "SELECT pg_sleep(30)",
            ):
                refusals.append(_error(await client.call_tool("warehouse_sql", {"sql": write})))
            return refusals

    refusals = asyncio.run(go())
    assert "read-only transaction" in refusals[0]
    assert "read-only transaction" in refusals[1]
    assert "read-write mode must be set before any query" in refusals[2]
    assert "multiple commands" in refusals[3]
    assert "timeout" in refusals[4]
    assert all("postgresql://" not in r for r in refusals)
    with psycopg.connect(postgres_url) as con:
        assert con.execute("SELECT count(*) FROM profiles").fetchone() == (2,)
