"""A start date far back: one run syncs every stream, dimensions whole, reports within the cap.

``--start-date`` bounds facts (events, report days) only: profiles, lists,
segments, campaigns, flows, templates, tags and memberships are read whole
whatever it says. Report requests are split into the longest window each
endpoint allows (a daily flow series: 60 days, which across the autumn clock
change of the account's timezone is 60 days and an hour), and the whole range
is planned in one run within the daily cap of 225 requests; what does not fit
follows the next day.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from kbridge import sync
from kbridge.api import AsyncClient, ClientConfig, LimiterConfig
from kbridge.core import ManualClock
from kbridge.emulator.config import EmulatorConfig
from kbridge.emulator.server import EmulatorServer
from kbridge.sync.state import format_ts, parse_ts
from kbridge.testing.plugin import http_client_for
from kbridge.warehouse.duckdb import DuckDBWarehouse

from .conftest import SERVED, api_all

pytestmark = pytest.mark.integration

#: the emulator's account lives in America/New_York; 400 days back crosses two clock changes
CONFIG = EmulatorConfig(seed=7, profiles=120, events=3000, rate_limit_factor=None)
DAYS_BACK = 400


def midnight(dt: datetime) -> datetime:
    return dt.replace(hour=0, minute=0, second=0, microsecond=0)


def run(server: EmulatorServer, wh: DuckDBWarehouse, clock: ManualClock, **kw: Any) -> Any:
    async def go() -> sync.SyncResult:
        # the client's limiter sleeps on the manual clock: paced tiers cost no real time
        async with AsyncClient(server.api_key, base_url=server.base_url, clock=clock) as api:
            return await sync.run(api, wh, clock=clock, **kw)

    return asyncio.run(go())


def count(wh: DuckDBWarehouse, table: str) -> int:
    return int(wh.query(f'SELECT count(*) FROM "{table}"')[0][0])  # noqa: S608


def bookmark(wh: DuckDBWarehouse, account: str, stream: str) -> datetime:
    return parse_ts(str(wh.load_state(account, stream)[""]["bookmark"]))


def members(http: httpx.Client, kind: str) -> int:
    return sum(
        len(api_all(http, f"/api/{kind}/{p['id']}/profiles")) for p in api_all(http, f"/api/{kind}")
    )


def test_one_run_from_400_days_back_syncs_every_stream_whole_and_reports_within_the_cap() -> None:
    with EmulatorServer(CONFIG) as server, http_client_for(server) as http:
        # the run's clock starts just after midnight: its paced report requests move it on by
        # hours, and begun late in a UTC day its days would end a day later than the test
        # expects (it failed when run after about 22:00 UTC)
        now = midnight(parse_ts(http.get("/_emulator/clock").json()["now"])) + timedelta(minutes=30)
        clock = ManualClock(now)
        start = now - timedelta(days=DAYS_BACK)
        wh = DuckDBWarehouse(":memory:")

        result = run(server, wh, clock, streams=list(SERVED), start_date=start)
        assert midnight(clock.now()) == midnight(now), "the first run crossed midnight"

        assert result.ok, {s: r.error for s, r in result.streams.items() if r.error}
        # dimensions are whole: the start date does not cut them
        dimensions = {
            "profiles": len(api_all(http, "/api/profiles")),
            "lists": len(api_all(http, "/api/lists")),
            "segments": len(api_all(http, "/api/segments")),
            "metrics": len(api_all(http, "/api/metrics")),
            "campaigns": sum(
                len(api_all(http, "/api/campaigns", {"filter": f"equals(messages.channel,'{c}')"}))
                for c in ("email", "sms")
            ),
            "flows": len(api_all(http, "/api/flows")),
            "templates": len(api_all(http, "/api/templates")),
            "tags": len(api_all(http, "/api/tags")),
            "list_memberships": members(http, "lists"),
            "segment_memberships": members(http, "segments"),
        }
        assert dimensions["campaigns"] > 20
        assert dimensions["profiles"] == 120
        assert {t: count(wh, t) for t in dimensions} == dimensions
        # facts are bounded by it: every event from the start date on, none before
        since = {"filter": f"greater-or-equal(datetime,{format_ts(start)})"}
        assert count(wh, "events") == len(api_all(http, "/api/events", since))
        first = wh.query("SELECT min(datetime) FROM events")[0][0]
        assert first >= start

        account, today = result.account_id, midnight(now)
        # flow series: 400 days in 60-day requests (59 when a clock change makes 60 too long)
        flows = result.streams["flow_series_daily"]
        assert flows.pages == 7
        assert flows.note is None
        assert bookmark(wh, account, "flow_series_daily") == today - timedelta(days=1)
        # campaign values: a day a request (values reports have no interval), 225 a day;
        # the run plans what the cap allows and says when the rest follows
        values = result.streams["campaign_values_daily"]
        assert values.pages == 225
        assert "allows 225 of 400 requests" in (values.note or "")
        reached = bookmark(wh, account, "campaign_values_daily")
        assert reached == midnight(start) + timedelta(days=224)

        def rows(since: datetime, until: datetime) -> int:
            sql = "SELECT count(*) FROM campaign_values_daily WHERE day >= ? AND day < ?"
            return int(wh.query(sql, [since, until])[0][0])

        # the lookback reaches back to the last day the first run found figures on: the
        # generated campaigns send every week or so, and which days have figures moves with
        # the date the test runs on (a fixed 2 days found none on some dates)
        new_from = midnight(start) + timedelta(days=225)
        last = wh.query("SELECT max(day) FROM campaign_values_daily WHERE day < ?", [new_from])
        lookback = max(timedelta(days=2), new_from - midnight(parse_ts(str(last[0][0]))))
        assert rows(new_from - lookback, new_from) > 0

        clock.advance(86400)  # the next day: the rest of the range, and the new day
        later = run(server, wh, clock, streams=["accounts", "campaign_values_daily"],
                    start_date=start, lookback={"campaign_values_daily": lookback})  # fmt: skip
        assert later.ok
        assert later.streams["campaign_values_daily"].note is None
        assert bookmark(wh, account, "campaign_values_daily") == today
        # the summary tells new rows from those the lookback read again
        again = later.streams["campaign_values_daily"]
        assert again.reread == rows(new_from - lookback, new_from) > 0
        assert again.records - again.reread == rows(new_from, today + timedelta(days=1)) > 0
        assert again.to_dict()["reread"] == again.reread
        wh.close()


def test_report_progress_tells_the_day_reached_and_the_time_left_at_the_clients_pace() -> None:
    op = "query_campaign_values"
    config = EmulatorConfig(seed=11, profiles=30, events=300, rate_limit_factor=None)
    with EmulatorServer(config) as server, http_client_for(server) as http:
        # just after midnight: the paced requests move the clock on by minutes, never a day
        now = midnight(parse_ts(http.get("/_emulator/clock").json()["now"])) + timedelta(minutes=30)
        clock = ManualClock(now)  # the client paces to Klaviyo's 2 a minute on this clock
        seen: list[sync.ReportProgress] = []

        async def go() -> sync.SyncResult:
            limits = ClientConfig(limiter=LimiterConfig(daily_caps={op: 4}))
            async with AsyncClient(server.api_key, base_url=server.base_url, clock=clock,
                                   config=limits) as api:  # fmt: skip
                return await sync.run(api, DuckDBWarehouse(":memory:"), clock=clock,
                                      streams=["flow_series_daily", "campaign_values_daily"],
                                      start_date=now - timedelta(days=DAYS_BACK),
                                      on_report_progress=seen.append)  # fmt: skip

        result = asyncio.run(go())

    assert result.ok
    flows = [p.text for p in seen if p.stream == "flow_series_daily"]
    assert flows == [
        "day 0 of 400, ~4 min left",  # 7 requests at the paced 1.9 a minute
        "day 59 of 400, ~4 min left",
        "day 118 of 400, ~3 min left",
        "day 177 of 400, ~3 min left",
        "day 236 of 400, ~2 min left",
        "day 295 of 400, ~2 min left",
        "day 354 of 400, ~1 min left",
        "day 400 of 400, done",
    ]
    values = [p.text for p in seen if p.stream == "campaign_values_daily"]
    assert values == [  # 4 requests fit today's budget
        "day 0 of 400, ~3 min left, 396 days after the daily cap resets",
        "day 1 of 400, ~2 min left, 396 days after the daily cap resets",
        "day 2 of 400, ~2 min left, 396 days after the daily cap resets",
        "day 3 of 400, ~1 min left, 396 days after the daily cap resets",
        "day 4 of 400, 396 days after the daily cap resets",
    ]
    note = result.streams["campaign_values_daily"].note or ""
    first_deferred = (now - timedelta(days=DAYS_BACK - 4)).date().isoformat()
    assert f"days from {first_deferred} follow after" in note
