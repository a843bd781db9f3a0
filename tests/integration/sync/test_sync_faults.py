"""Exactly-once under transport faults: 5xx, resets and truncated bodies from the emulator.

The client retries what is safe to retry; what it cannot (a stream's request
keeps failing) fails that stream, and the next run resumes. Either way the
warehouse ends identical to a sync of the same account without faults.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from kbridge import sync
from kbridge.api import AsyncClient, ClientConfig, RetryPolicy
from kbridge.core import ManualClock
from kbridge.emulator.config import EmulatorConfig
from kbridge.emulator.server import EmulatorServer
from kbridge.testing.plugin import http_client_for
from kbridge.warehouse.duckdb import DuckDBWarehouse

from .conftest import snapshot

pytestmark = pytest.mark.integration

CONFIG = EmulatorConfig(seed=5, profiles=80, events=1500, rate_limit_factor=None)
STREAMS = ["profiles", "events", "lists", "list_memberships", "segments", "metrics"]


def run(
    server: EmulatorServer, wh: Any, *, attempts: int = 8, timeout: httpx.Timeout | None = None
) -> sync.SyncResult:
    async def go() -> sync.SyncResult:
        client = AsyncClient(
            server.api_key,
            base_url=server.base_url,
            clock=ManualClock(),
            config=ClientConfig(
                retry=RetryPolicy(max_attempts=attempts),
                **({} if timeout is None else {"timeout": timeout}),
            ),
        )
        async with client:
            return await sync.run(client, wh, streams=STREAMS)

    return asyncio.run(go())


def test_faults_change_nothing_in_the_result() -> None:
    faults = "http500=0.08,http503=0.05,reset=0.03,truncate=0.03"
    with EmulatorServer(CONFIG) as server, http_client_for(server) as http:
        clean = DuckDBWarehouse(":memory:")
        run(server, clean)
        assert http.post("/_emulator/faults", json={"spec": faults}).status_code == 200
        wh = DuckDBWarehouse(":memory:")
        for _ in range(10):  # a stream whose retries ran out resumes on the next run
            try:
                run(server, wh, attempts=3)
                break
            except sync.SyncError:
                continue
        else:
            pytest.fail("ten runs under faults never completed")
        injected = http.get("/_emulator/stats").json()["faults"]["injected"]
    assert sum(injected.values()) >= 3, f"too few faults to prove anything: {injected}"
    for name in STREAMS:
        for t in sync.get_stream(name).tables:
            assert snapshot(wh, t) == snapshot(clean, t), t.name


def test_stalled_requests_and_cdn_challenges_are_retried_within_the_run() -> None:
    # a stall never answers: only the client's (short, configured) timeout ends it
    faults = "stall=0.1@30s,challenge403=0.1"
    with EmulatorServer(CONFIG) as server, http_client_for(server) as http:
        clean = DuckDBWarehouse(":memory:")
        run(server, clean)
        assert http.post("/_emulator/faults", json={"spec": faults}).status_code == 200
        wh = DuckDBWarehouse(":memory:")
        result = run(server, wh, timeout=httpx.Timeout(5.0, read=0.5))  # one run, no resume
        injected = http.get("/_emulator/stats").json()["faults"]["injected"]
    assert result.ok
    assert injected["stall"] >= 1, injected
    assert injected["challenge403"] >= 1, injected
    for name in STREAMS:
        for t in sync.get_stream(name).tables:
            assert snapshot(wh, t) == snapshot(clean, t), t.name
