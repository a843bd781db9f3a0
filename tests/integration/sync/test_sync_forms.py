"""The ``forms`` stream from the emulator into DuckDB.

The warehouse is compared with what the API serves, read with a plain HTTP
client: the same ids and attributes; a new form reaches it on the next
(incremental) run and a deleted one leaves with ``--reconcile``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kbridge import sync
from kbridge.emulator.config import EmulatorConfig
from kbridge.emulator.server import EmulatorServer
from kbridge.testing.plugin import http_client_for
from kbridge.warehouse.duckdb import DuckDBWarehouse

from .conftest import api_all, client_for

pytestmark = pytest.mark.integration


@pytest.fixture
def account() -> Iterator[tuple[EmulatorServer, httpx.Client]]:
    config = EmulatorConfig(seed=5, profiles=20, events=100, rate_limit_factor=None)
    with EmulatorServer(config) as server, http_client_for(server) as http:
        yield server, http


def run(server: EmulatorServer, wh: DuckDBWarehouse, **kwargs: Any) -> sync.SyncResult:
    async def go() -> sync.SyncResult:
        async with client_for(server) as client:
            return await sync.run(client, wh, **kwargs)

    return asyncio.run(go())


def rows(wh: DuckDBWarehouse) -> dict[str, tuple[Any, ...]]:
    return {r[0]: r[1:] for r in wh.query("SELECT id, name, status, ab_test FROM forms")}


def test_forms_match_the_api_and_follow_changes(
    account: tuple[EmulatorServer, httpx.Client],
) -> None:
    server, http = account
    wh = DuckDBWarehouse(":memory:")
    run(server, wh, streams=["forms"])
    served = {
        f["id"]: (f["attributes"]["name"], f["attributes"]["status"], f["attributes"]["ab_test"])
        for f in api_all(http, "/api/forms")
    }
    assert served
    assert rows(wh) == served
    http.post("/_emulator/clock", json={"advance_seconds": 60})
    versions = [{"type": "popup", "name": "A", "steps": []}]
    attrs = {
        "name": "New",
        "status": "draft",
        "ab_test": False,
        "definition": {"versions": versions},
    }
    new = http.post("/api/forms", json={"data": {"type": "form", "attributes": attrs}})
    assert new.status_code == 201
    gone = next(iter(served))
    assert http.delete(f"/api/forms/{gone}").status_code == 204
    run(server, wh, streams=["forms"])
    after = rows(wh)
    assert after[new.json()["data"]["id"]] == ("New", "draft", False)
    assert gone in after  # an incremental run cannot see a deletion
    run(server, wh, streams=["forms"], reconcile=True)
    assert gone not in rows(wh)
    assert len(rows(wh)) == len(served)
