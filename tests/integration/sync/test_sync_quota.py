"""Daily quotas: report streams plan within today's budget and resume the next day.

Klaviyo's reporting endpoints allow 225 requests a day. A sync must neither
fail when the budget is spent (by itself or by another integration) nor loop
on the 429: it stores what fits, says so in its summary, and the next day's
run continues at the first missing day. The client's clock (a ManualClock)
and the emulator's simulated clock stand in for the days passing.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import httpx
import pytest

from kbridge import sync
from kbridge.api import AsyncClient, ClientConfig, LimiterConfig
from kbridge.core import ManualClock
from kbridge.emulator.config import EmulatorConfig
from kbridge.emulator.server import EmulatorServer
from kbridge.sync.state import parse_ts
from kbridge.warehouse.duckdb import DuckDBWarehouse

pytestmark = pytest.mark.integration

STREAM = "campaign_values_daily"
OP = "query_campaign_values"


def emulator_now(server: EmulatorServer) -> datetime:
    return parse_ts(httpx.get(f"{server.base_url}/_emulator/clock").json()["now"])


def report_requests(server: EmulatorServer) -> dict[str, int]:
    stats = httpx.get(f"{server.base_url}/_emulator/stats").json()["operations"].get(OP, {})
    return {"requests": stats.get("requests", 0), "throttled": stats.get("throttled", 0)}


def bookmark(wh: DuckDBWarehouse, result: sync.SyncResult) -> str | None:
    value = (wh.load_state(result.account_id, STREAM).get("") or {}).get("bookmark")
    return None if value is None else str(value)


def midnight_after(start: datetime, days: int) -> str:
    return (start + timedelta(days=days)).strftime("%Y-%m-%dT00:00:00+00:00")


def test_a_run_plans_within_the_remaining_budget_and_the_next_day_continues() -> None:
    config = EmulatorConfig(seed=29, profiles=30, events=300, rate_limit_factor=1000.0)
    with EmulatorServer(config) as server:
        clock = ManualClock(emulator_now(server))
        start = clock.now() - timedelta(days=10)
        limits = LimiterConfig(daily_caps={OP: 4})  # as if 221 of 225 were spent already
        wh = DuckDBWarehouse(":memory:")

        async def runs_of_one_day(n: int) -> list[sync.SyncResult]:
            async with AsyncClient(server.api_key, base_url=server.base_url, clock=clock,
                                   config=ClientConfig(limiter=limits)) as api:  # fmt: skip
                streams = ["accounts", STREAM]
                return [
                    await sync.run(api, wh, streams=streams, start_date=start, clock=clock)
                    for _ in range(n)
                ]

        first, second = asyncio.run(runs_of_one_day(2))
        assert first.ok
        assert first.streams[STREAM].pages == 4  # 10 days wanted, 4 fit: no request refused
        assert "allows 4 of 10 requests" in (first.streams[STREAM].note or "")
        assert second.ok
        assert second.streams[STREAM].pages == 0
        assert "daily quota exhausted until" in (second.streams[STREAM].note or "")
        assert report_requests(server) == {"requests": 4, "throttled": 0}
        assert bookmark(wh, first) == midnight_after(start, 3)

        clock.advance(86400)  # the next day: the budget is back, the run continues
        (later,) = asyncio.run(runs_of_one_day(1))
        assert later.ok
        assert later.streams[STREAM].pages == 4
        assert report_requests(server) == {"requests": 8, "throttled": 0}
        assert bookmark(wh, later) == midnight_after(start, 7)
        wh.close()


def test_a_cap_spent_elsewhere_ends_the_stream_with_a_note_and_no_retry_loop() -> None:
    # the server's cap is 2 while the client believes 225: another integration spent the rest
    config = EmulatorConfig(seed=31, profiles=30, events=300, rate_limit_factor=100.0,
                            daily_caps={OP: 2})  # fmt: skip
    with EmulatorServer(config) as server:
        clock = ManualClock(emulator_now(server))
        start = clock.now() - timedelta(days=6)
        wh = DuckDBWarehouse(":memory:")

        async def go() -> sync.SyncResult:
            async with AsyncClient(server.api_key, base_url=server.base_url, clock=clock) as api:
                first = await sync.run(api, wh, streams=["accounts", STREAM],
                                       start_date=start, clock=clock)  # fmt: skip
                again = await sync.run(api, wh, streams=["accounts", STREAM],
                                       start_date=start, clock=clock)  # fmt: skip
                assert again.streams[STREAM].pages == 0  # remembered: not even sent
                return first

        first = asyncio.run(go())
        assert first.ok, first.to_dict()
        assert bookmark(wh, first) == midnight_after(start, 1)
        assert first.streams[STREAM].pages == 2
        note = first.streams[STREAM].note or ""
        assert note.startswith("daily quota exhausted until")
        assert f"resumes at {(start + timedelta(days=2)).date().isoformat()}" in note
        assert report_requests(server) == {"requests": 3, "throttled": 1}
        assert all(wait < 60 for wait in clock.slept)  # never slept towards the reset

        httpx.post(f"{server.base_url}/_emulator/clock", json={"advance_seconds": 86400})
        clock.advance(86400)
        next_day = asyncio.run(go())
        assert report_requests(server) == {"requests": 6, "throttled": 2}
        assert bookmark(wh, next_day) == midnight_after(start, 3)
        wh.close()
