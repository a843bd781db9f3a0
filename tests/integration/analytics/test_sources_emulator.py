"""Events synced from a later date than Klaviyo's aggregates and reports: the analyses take
their totals and message figures from Klaviyo's, and the totals are the emulator's own.

The reports and daily aggregates are synced from 40 days back, the events (in a run of
their own) from 20; the orders of the period are recounted from plain ``GET /api/events``
reads, never kbridge's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from kbridge import sync
from kbridge.analytics import attribution, campaign_performance
from kbridge.api import AsyncClient
from kbridge.core import ManualClock
from kbridge.emulator.config import EmulatorConfig
from kbridge.emulator.server import EmulatorServer
from kbridge.sync.state import format_ts, parse_ts
from kbridge.testing.plugin import http_client_for
from kbridge.warehouse import Warehouse, open_warehouse
from tests.integration.sync.conftest import api_all

pytestmark = pytest.mark.integration

CONFIG = EmulatorConfig(seed=5, profiles=200, events=8000, rate_limit_factor=None)
REPORTS = [
    "profiles",
    "metrics",
    "campaigns",
    "flows",
    "flow_messages",
    "campaign_values_daily",
    "flow_series_daily",
    "metric_aggregates_daily",
]


def midnight(dt: datetime) -> datetime:
    return dt.replace(hour=0, minute=0, second=0, microsecond=0)


@pytest.fixture(scope="module")
def synced(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Warehouse, str, datetime, datetime, httpx.Client]]:
    with EmulatorServer(CONFIG) as server, http_client_for(server) as http:
        today = midnight(parse_ts(http.get("/_emulator/clock").json()["now"]))
        clock = ManualClock(today + timedelta(hours=1))
        start = today - timedelta(days=40)
        url = f"duckdb:///{tmp_path_factory.mktemp('sources') / 'wh.duckdb'}"

        async def go(streams: list[str], since: datetime) -> None:
            async with AsyncClient(server.api_key, base_url=server.base_url, clock=clock) as api:
                result = await sync.run(api, url, clock=clock, streams=streams, start_date=since)
                assert result.ok, {s: r.error for s, r in result.streams.items() if r.error}

        asyncio.run(go(REPORTS, start))
        asyncio.run(go(["events"], today - timedelta(days=20)))
        wh = open_warehouse(url)
        try:
            account = str(wh.query("SELECT DISTINCT account_id FROM profiles")[0][0])
            yield wh, account, start, today, http
        finally:
            wh.close()


def orders(http: httpx.Client, start: datetime, end: datetime) -> list[dict[str, Any]]:
    metrics = {m["attributes"]["name"]: m["id"] for m in api_all(http, "/api/metrics")}
    return api_all(
        http,
        "/api/events",
        {
            "filter": f'equals(metric_id,"{metrics["Placed Order"]}"),'
            f"greater-or-equal(datetime,{format_ts(start)}),less-than(datetime,{format_ts(end)})"
        },
    )


def test_attribution_totals_are_every_order_of_the_period(
    synced: tuple[Warehouse, str, datetime, datetime, httpx.Client],
) -> None:
    wh, account, start, today, http = synced
    served = orders(http, start, today)
    early = [o for o in served if parse_ts(o["attributes"]["datetime"]) < today - timedelta(20)]
    assert early, "no orders before the events' start date: nothing would be missing"
    n = attribution(wh, account, since=start, as_of=today).notes
    assert n["totals_from"] == "events + metric_aggregates_daily"
    assert n["conversions"] == len(served)
    revenue = sum(float(o["attributes"]["event_properties"]["$value"]) for o in served)
    assert n["revenue"] == pytest.approx(revenue, abs=0.01)
    assert n["events_missing"]["conversions"] == len(early)


def test_message_figures_come_from_the_reports(
    synced: tuple[Warehouse, str, datetime, datetime, httpx.Client],
) -> None:
    wh, account, start, today, _ = synced
    perf = campaign_performance(wh, account, since=start, as_of=today)
    origins = perf.messages.notes["figures_from"]
    assert origins.get("report", 0) + origins.get("report + events", 0) > 0
    assert perf.messages.notes["events_coverage"]["days_short"] >= 1
    # a message whose figures are the report's alone has exactly the report's sums
    reported = {
        str(mid): (int(d or 0), float(v or 0))
        for mid, d, v in wh.query(
            "select campaign_message_id, sum(delivered), sum(conversion_value)"
            " from campaign_values_daily where account_id = ? group by 1",
            [account],
        )
    }
    alone = [
        r
        for r in perf.messages.records()
        if r["figures_from"] == "report" and r["source"] == "campaign"
    ]
    assert alone
    for r in alone:
        assert (r["delivered"], r["revenue"]) == (
            reported[r["message_id"]][0],
            pytest.approx(reported[r["message_id"]][1], abs=0.01),
        )
