"""The custom-object records stream from the emulator into DuckDB.

Compared with what the API serves, read with a plain HTTP client: the same
records under the same object types with the same properties; then a record
deleted in the account and a new object type reach the warehouse on the
next run, and a key without ``custom-objects:read`` leaves the stream out of
a default sync.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kbridge import sync
from kbridge.core import loads
from kbridge.emulator.config import EmulatorConfig
from kbridge.emulator.server import EmulatorServer
from kbridge.testing.plugin import http_client_for
from kbridge.warehouse.duckdb import DuckDBWarehouse

from .conftest import api_all, client_for

pytestmark = pytest.mark.integration

STREAM = "custom_object_records"


@pytest.fixture
def account() -> Iterator[tuple[EmulatorServer, httpx.Client]]:
    config = EmulatorConfig(seed=5, profiles=40, events=200, rate_limit_factor=None)
    with EmulatorServer(config) as server, http_client_for(server) as http:
        yield server, http


def run(server: EmulatorServer, wh: DuckDBWarehouse, **kwargs: Any) -> sync.SyncResult:
    async def go() -> sync.SyncResult:
        async with client_for(server) as client:
            return await sync.run(client, wh, **kwargs)

    return asyncio.run(go())


def served(http: httpx.Client) -> dict[str, tuple[str, dict[str, Any]]]:
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for otype in http.get("/api/object-types").json()["data"]:
        for r in api_all(http, f"/api/object-types/{otype['id']}/object-records"):
            out[r["id"]] = (otype["id"], r["attributes"]["record_properties"])
    return out


def stored(wh: DuckDBWarehouse) -> dict[str, tuple[str, dict[str, Any]]]:
    rows = wh.query(
        f"SELECT id, object_type_id, CAST(record_properties AS VARCHAR) FROM {STREAM}"  # noqa: S608
    )
    return {i: (t, loads(p)) for i, t, p in rows}


def test_records_reach_the_warehouse_and_deletions_are_swept(
    account: tuple[EmulatorServer, httpx.Client],
) -> None:
    server, http = account
    wh = DuckDBWarehouse(":memory:")
    result = run(server, wh, streams=[STREAM])
    before = served(http)
    assert len(before) >= 5
    assert stored(wh) == before
    assert result.streams[STREAM].records == len(before)

    doomed = next(iter(before))
    body = {"data": {"type": "object-record-bulk-delete-job", "relationships": {
        "object-records": {"data": [{"type": "object-record", "id": doomed}]}}}}  # fmt: skip
    assert http.post("/api/object-record-bulk-delete-jobs", json=body).status_code == 202
    http.post("/_emulator/clock", json={"advance_seconds": 600})
    run(server, wh, streams=[STREAM])
    after = served(http)
    assert doomed not in after
    assert stored(wh) == after


def test_a_default_sync_leaves_the_stream_out_without_the_scope(
    account: tuple[EmulatorServer, httpx.Client],
) -> None:
    from kbridge.api import AsyncClient
    from kbridge.connections import plan_scopes
    from kbridge.core import ManualClock

    server, http = account
    planned = set(plan_scopes(["sync"]).scopes)
    assert "custom-objects:read" in planned
    minted = http.post(
        "/_emulator/keys", json={"scopes": sorted(planned - {"custom-objects:read"})}
    )
    key = minted.json()["key"]

    async def go() -> sync.SyncResult:
        async with AsyncClient(key, base_url=server.base_url, clock=ManualClock()) as client:
            return await sync.run(client, DuckDBWarehouse(":memory:"), streams=None,
                                  start_date=None)  # fmt: skip

    everything = asyncio.run(go())
    assert everything.ok, {s: r.error for s, r in everything.streams.items() if r.error}
    note = everything.streams[STREAM].note or ""
    assert "custom-objects:read" in note
    assert everything.streams[STREAM].records == 0
