"""``metric_aggregates_daily``: per metric per UTC day, from query_metric_aggregates.

The figures are recounted from plain ``GET /api/events`` reads; a late event
inside the lookback changes its day's row on the next run.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import pytest

from kbridge import sync
from kbridge.api import AsyncClient
from kbridge.core import ManualClock
from kbridge.emulator.server import EmulatorServer
from kbridge.sync.state import format_ts, parse_ts
from kbridge.testing.plugin import http_client_for
from kbridge.warehouse.duckdb import DuckDBWarehouse

from .conftest import SMALL, api_all

pytestmark = pytest.mark.integration

STREAM = "metric_aggregates_daily"


def midnight(dt: datetime) -> datetime:
    return dt.replace(hour=0, minute=0, second=0, microsecond=0)


def run(server: EmulatorServer, wh: DuckDBWarehouse, clock: ManualClock, **kw: Any) -> Any:
    async def go() -> sync.SyncResult:
        async with AsyncClient(server.api_key, base_url=server.base_url, clock=clock) as api:
            return await sync.run(api, wh, clock=clock, streams=[STREAM], **kw)

    return asyncio.run(go())


def rows(wh: DuckDBWarehouse) -> dict[tuple[str, str], tuple[int, float, int, str]]:
    found = wh.query(
        "SELECT metric_id, day, count, sum_value, unique_profiles, metric_name "
        "FROM metric_aggregates_daily"
    )
    return {
        (str(m), format_ts(d)[:10]): (int(c), float(s), int(u), str(n))
        for m, d, c, s, u, n in found
    }


def test_daily_aggregates_per_metric_match_the_events_and_the_lookback_rereads() -> None:
    with EmulatorServer(SMALL) as server, http_client_for(server) as http:
        now = midnight(parse_ts(http.get("/_emulator/clock").json()["now"])) + timedelta(hours=1)
        clock = ManualClock(now)
        start = now - timedelta(days=45)
        wh = DuckDBWarehouse(":memory:")

        result = run(server, wh, clock, start_date=start)
        assert result.ok, {s: r.error for s, r in result.streams.items() if r.error}
        got = rows(wh)
        metrics = {m["id"]: m["attributes"]["name"] for m in api_all(http, "/api/metrics")}
        today = midnight(now)
        expected: dict[tuple[str, str], list[Any]] = defaultdict(lambda: [0, 0.0, set()])
        for e in api_all(
            http,
            "/api/events",
            {"filter": f"greater-or-equal(datetime,{format_ts(midnight(start))})"},
        ):
            when = parse_ts(e["attributes"]["datetime"])
            if when >= today:
                continue
            key = (e["relationships"]["metric"]["data"]["id"], format_ts(when)[:10])
            expected[key][0] += 1
            expected[key][1] += float(e["attributes"]["event_properties"].get("$value", 0))
            expected[key][2].add(e["relationships"]["profile"]["data"]["id"])
        nonzero = {k: v for k, v in got.items() if v[0]}
        assert set(nonzero) == set(expected)
        for key, (n, total, people) in expected.items():
            count, summed, unique, name = got[key]
            assert (count, unique, name) == (n, len(people), metrics[key[0]])
            assert summed == pytest.approx(total)
        # every metric has a row for every day of the range (zeros included)
        days = (today - midnight(start)).days
        assert len(got) == len(metrics) * days
        state = wh.load_state(result.account_id, STREAM)[""]
        assert parse_ts(str(state["bookmark"])) == today - timedelta(days=1)

        # a late order, two days back: inside the 7-day lookback of the next day's run
        placed = next(i for i, n in metrics.items() if n == "Placed Order")
        late = today - timedelta(days=2) + timedelta(hours=3)
        body = {
            "data": {
                "type": "event",
                "attributes": {
                    "properties": {"$value": 12.5},
                    "time": late.isoformat(),
                    "metric": {"data": {"type": "metric", "attributes": {"name": "Placed Order"}}},
                    "profile": {
                        "data": {"type": "profile", "attributes": {"email": "late@example.com"}}
                    },
                },
            }
        }
        assert http.post("/api/events", json=body).status_code == 202
        before = got.get((placed, format_ts(late)[:10]), (0, 0.0, 0, ""))
        clock.advance(86400)
        http.post("/_emulator/clock", json={"advance_seconds": 86400})
        again = run(server, wh, clock)
        assert again.ok
        after = rows(wh)[(placed, format_ts(late)[:10])]
        assert after[0] == before[0] + 1
        assert after[1] == pytest.approx(before[1] + 12.5)
        state = wh.load_state(again.account_id, STREAM)[""]
        assert parse_ts(str(state["bookmark"])) == today
