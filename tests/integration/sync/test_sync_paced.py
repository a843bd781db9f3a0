"""At Klaviyo's published limits, every stream runs concurrently through one client and
the server never has to say 429: each stream is paced by its own operation's buckets."""

from __future__ import annotations

import asyncio

import pytest

from kbridge import sync
from kbridge.api import AsyncClient
from kbridge.emulator.config import EmulatorConfig
from kbridge.emulator.server import EmulatorServer
from kbridge.testing.plugin import http_client_for
from kbridge.warehouse.duckdb import DuckDBWarehouse

from .conftest import SERVED

#: reports allow 2 requests a minute: a month of days would take a quarter of an hour
PACED = [name for name in SERVED if sync.get_stream(name).report is None]

pytestmark = pytest.mark.integration


def test_all_streams_at_the_published_limits_draw_no_429() -> None:
    config = EmulatorConfig(seed=21, profiles=300, events=2500, rate_limit_factor=1.0)
    with EmulatorServer(config) as server, http_client_for(server) as http:
        wh = DuckDBWarehouse(":memory:")

        async def go() -> sync.SyncResult:
            # the real clock: the emulator's windows run on real time, so must the pacing
            async with AsyncClient(server.api_key, base_url=server.base_url) as client:
                return await sync.run(client, wh, streams=PACED)

        result = asyncio.run(go())
        stats = http.get("/_emulator/stats").json()
    assert result.ok
    assert stats["requests"] > 50, "too few requests to prove pacing"
    assert stats["throttled"] == 0, stats
    assert wh.query("SELECT count(*) FROM events")[0][0] == result.streams["events"].records
    wh.close()
