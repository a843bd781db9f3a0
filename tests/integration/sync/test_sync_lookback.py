"""Late-arriving data: an event that becomes visible after later ones were synced.

Klaviyo is eventually consistent: an event can be listed days after its
``datetime``. The emulator accepts ``POST /api/events`` with a past ``time``,
as Klaviyo does, which is exactly such an event. A sync that resumes from its
bookmark alone skips it forever; the lookback re-reads the window behind the
bookmark and upserts, so the late event arrives and nothing is doubled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from kbridge import sync
from kbridge.core import ConfigurationError, ManualClock
from kbridge.emulator.config import EmulatorConfig
from kbridge.emulator.server import EmulatorServer
from kbridge.sync.state import format_ts, parse_ts
from kbridge.testing.plugin import http_client_for
from kbridge.warehouse.duckdb import DuckDBWarehouse

from .conftest import api_all, client_for

pytestmark = pytest.mark.integration


@pytest.fixture
def account() -> Iterator[tuple[EmulatorServer, httpx.Client]]:
    config = EmulatorConfig(seed=23, profiles=40, events=400, rate_limit_factor=None)
    with EmulatorServer(config) as server, http_client_for(server) as http:
        yield server, http


def run(server: EmulatorServer, wh: DuckDBWarehouse, **kwargs: Any) -> sync.SyncResult:
    async def go() -> sync.SyncResult:
        async with client_for(server) as client:
            return await sync.run(client, wh, **kwargs)

    return asyncio.run(go())


def late_event(http: httpx.Client, when: str, n: int) -> None:
    body = {"data": {"type": "event", "attributes": {
        "properties": {"n": n}, "time": when,
        "metric": {"data": {"type": "metric", "attributes": {"name": "Arrived Late"}}},
        "profile": {"data": {"type": "profile", "attributes": {
            "email": f"late-{n}@example.com"}}}}}}  # fmt: skip
    response = http.post("/api/events", json=body)
    assert response.status_code == 202, response.text


def ids(wh: DuckDBWarehouse) -> list[str]:
    return [r[0] for r in wh.query("SELECT id FROM events ORDER BY id")]


def test_a_late_event_inside_the_lookback_arrives_once_and_without_it_is_lost(
    account: tuple[EmulatorServer, httpx.Client],
) -> None:
    server, http = account
    with_lookback, without = DuckDBWarehouse(":memory:"), DuckDBWarehouse(":memory:")
    run(server, with_lookback, streams=["events"])
    run(server, without, streams=["events"], lookback=timedelta(0))
    account_id = with_lookback.query("SELECT account_id FROM events LIMIT 1")[0][0]
    bookmark = parse_ts(with_lookback.load_state(account_id, "events")[""]["bookmark"])
    # visible only now, dated before what was synced: 3 days (inside 7) and 10 days (outside)
    late_event(http, format_ts(bookmark - timedelta(days=3)), 1)
    late_event(http, format_ts(bookmark - timedelta(days=10)), 2)

    run(server, with_lookback, streams=["events"])
    run(server, without, streams=["events"], lookback=timedelta(0))
    everything = sorted(e["id"] for e in api_all(http, "/api/events", {"page[size]": 200}))
    metric = next(m["id"] for m in api_all(http, "/api/metrics")
                  if m["attributes"]["name"] == "Arrived Late")  # fmt: skip
    late = {e["attributes"]["event_properties"]["n"]: e["id"] for e in api_all(
        http, "/api/events", {"filter": f'equals(metric_id,"{metric}")'})}  # fmt: skip
    found = set(ids(with_lookback))
    inside, outside = late[1], late[2]
    assert inside in found  # the lookback caught it
    assert outside not in found  # older than the lookback: a full refresh's job
    assert inside not in set(ids(without))  # the failure the lookback prevents
    assert len(ids(with_lookback)) == len(found)  # re-read, not doubled
    assert sorted(found | {outside}) == everything
    for wh in (with_lookback, without):
        wh.close()


def test_a_wider_lookback_per_stream_reaches_further_back(
    account: tuple[EmulatorServer, httpx.Client],
) -> None:
    server, http = account
    wh = DuckDBWarehouse(":memory:")
    run(server, wh, streams=["events", "profiles"])
    before = len(ids(wh))
    newest = wh.query("SELECT max(datetime) FROM events")[0][0]
    late_event(http, format_ts(newest - timedelta(days=10)), 3)
    result = run(server, wh, streams=["events", "profiles"],
                 lookback={"events": timedelta(days=14)})  # fmt: skip
    assert len(ids(wh)) == before + 1
    window = wh.query(
        "SELECT count(*) FROM events WHERE datetime >= ?", [newest - timedelta(days=14)]
    )[0][0]
    assert result.streams["events"].records == window
    wh.close()


def test_a_negative_or_unknown_lookback_is_refused_before_any_request(
    account: tuple[EmulatorServer, httpx.Client],
) -> None:
    server, _ = account
    wh = DuckDBWarehouse(":memory:")
    with pytest.raises(ConfigurationError, match="non-negative"):
        run(server, wh, streams=["events"], lookback=timedelta(days=-1))
    with pytest.raises(ConfigurationError, match="no_such_stream"):
        run(server, wh, streams=["events"], lookback={"no_such_stream": timedelta(days=1)})
    wh.close()


REPORT = "campaign_values_daily"


def opened(http: httpx.Client, message: str, when: datetime) -> None:
    """An "Opened Email" of ``message`` at ``when``, visible only from now on."""
    body = {"data": {"type": "event", "attributes": {
        "properties": {"$message": message}, "time": format_ts(when),
        "metric": {"data": {"type": "metric", "attributes": {"name": "Opened Email"}}},
        "profile": {"data": {"type": "profile", "attributes": {
            "email": "opened-late@example.com"}}}}}}  # fmt: skip
    response = http.post("/api/events", json=body)
    assert response.status_code == 202, response.text


def opens(wh: DuckDBWarehouse, message: str, day: datetime) -> int:
    found = wh.query(
        "SELECT coalesce(sum(opens), 0) FROM campaign_values_daily"
        " WHERE campaign_message_id = ? AND day = ?",
        [message, day],
    )
    return int(found[0][0])


def test_report_days_are_read_again_within_the_lookback_when_a_new_day_is_read(
    account: tuple[EmulatorServer, httpx.Client],
) -> None:
    server, http = account
    now = parse_ts(http.get("/_emulator/clock").json()["now"])
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    start, tomorrow = today - timedelta(days=4), ManualClock(now + timedelta(days=1))
    with_lookback, without = DuckDBWarehouse(":memory:"), DuckDBWarehouse(":memory:")
    for wh in (with_lookback, without):
        first = run(server, wh, streams=[REPORT], start_date=start)
        assert first.streams[REPORT].pages == 4  # four complete days, one request each
    campaign = api_all(http, "/api/campaigns", {"filter": "equals(messages.channel,'email')",
                                                 "include": "campaign-messages"})[0]  # fmt: skip
    message = campaign["relationships"]["campaign-messages"]["data"][0]["id"]
    late_day = today - timedelta(days=2)  # synced already, inside the 2-day lookback
    before = opens(with_lookback, message, late_day)
    opened(http, message, late_day + timedelta(hours=12))

    # the next day: one new day, and (with the lookback) the two before it again
    again = run(server, with_lookback, streams=[REPORT], start_date=start, clock=tomorrow)
    stale = run(server, without, streams=[REPORT], start_date=start, clock=tomorrow,
                lookback=timedelta(0))  # fmt: skip
    assert (again.streams[REPORT].pages, stale.streams[REPORT].pages) == (3, 1)
    assert opens(with_lookback, message, late_day) == before + 1
    rows = with_lookback.query(
        "SELECT count(*) FROM campaign_values_daily WHERE campaign_message_id = ? AND day = ?",
        [message, late_day],
    )
    assert rows[0][0] == 1  # upserted onto the day's row, not added beside it
    assert opens(without, message, late_day) == before  # the failure the lookback prevents
    for wh, result in ((with_lookback, again), (without, stale)):
        state = wh.load_state(result.account_id, REPORT)[""]
        assert parse_ts(state["bookmark"]) == today  # re-read days never move it back
    # a run with no new day reads nothing, not the lookback again
    idle = run(server, with_lookback, streams=[REPORT], start_date=start, clock=tomorrow)
    assert idle.streams[REPORT].pages == 0
    for wh in (with_lookback, without):
        wh.close()
