"""``POST /api/metric-aggregates`` computed over the emulator's events.

Every figure is recounted here from plain ``GET /api/events`` reads of the
same metric: count (events), sum_value (their ``$value``), unique (profiles),
per hour/day/week/month bucket in the query's timezone, per dimension.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from kbridge.emulator import EmulatorConfig, EmulatorServer
from kbridge.testing.plugin import http_client_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    config = EmulatorConfig(seed=41, profiles=150, events=3000, rate_limit_factor=None)
    with EmulatorServer(config) as running:
        yield running


@pytest.fixture(scope="module")
def http(server: EmulatorServer) -> Iterator[httpx.Client]:
    with http_client_for(server) as client:
        yield client


def metric_id(http: httpx.Client, name: str) -> str:
    metrics = http.get("/api/metrics").json()["data"]
    return str(next(m["id"] for m in metrics if m["attributes"]["name"] == name))


def events_of(http: httpx.Client, metric: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    url: str | None = "/api/events"
    params: dict[str, str] | None = {
        "filter": f'equals(metric_id,"{metric}")',
        "page[size]": "200",
    }
    while url:
        body = http.get(url, params=params).json()
        out += body["data"]
        url, params = body["links"].get("next"), None
    return out


def window(http: httpx.Client, days: int) -> tuple[datetime, datetime]:
    now = datetime.fromisoformat(http.get("/_emulator/clock").json()["now"])
    end = datetime.combine(now.date(), datetime.min.time(), UTC)
    return end - timedelta(days=days), end


def query(http: httpx.Client, **attributes: Any) -> httpx.Response:
    body = {"data": {"type": "metric-aggregate", "attributes": attributes}}
    return http.post("/api/metric-aggregates", json=body)


def bucket(when: datetime, interval: str, tz: ZoneInfo) -> str:
    local = when.astimezone(tz)
    if interval == "hour":
        start = local.replace(minute=0, second=0, microsecond=0)
    else:
        day = local.date()
        if interval == "week":
            day -= timedelta(days=day.weekday())
        elif interval == "month":
            day = day.replace(day=1)
        start = datetime.combine(day, datetime.min.time(), tz)
    return start.isoformat()


def test_count_sum_and_unique_per_day_match_the_events(http: httpx.Client) -> None:
    placed = metric_id(http, "Placed Order")
    start, end = window(http, 60)
    r = query(
        http,
        metric_id=placed,
        measurements=["count", "sum_value", "unique"],
        interval="day",
        filter=[
            f"greater-or-equal(datetime,{start.isoformat()})",
            f"less-than(datetime,{end.isoformat()})",
        ],
    )
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["type"] == "metric-aggregate"
    dates = data["attributes"]["dates"]
    assert len(dates) == 60
    assert datetime.fromisoformat(dates[0]) == start
    [row] = data["attributes"]["data"]
    assert row["dimensions"] == []
    counts: dict[str, int] = defaultdict(int)
    sums: dict[str, float] = defaultdict(float)
    people: dict[str, set[str]] = defaultdict(set)
    for e in events_of(http, placed):
        when = datetime.fromisoformat(e["attributes"]["datetime"])
        if not start <= when < end:
            continue
        key = bucket(when, "day", ZoneInfo("UTC"))
        counts[key] += 1
        sums[key] += float(e["attributes"]["event_properties"].get("$value", 0))
        people[key].add(e["relationships"]["profile"]["data"]["id"])
    keys = [datetime.fromisoformat(d).isoformat() for d in dates]
    assert row["measurements"]["count"] == [counts.get(k, 0) for k in keys]
    assert row["measurements"]["unique"] == [len(people.get(k, ())) for k in keys]
    assert row["measurements"]["sum_value"] == pytest.approx([sums.get(k, 0.0) for k in keys])
    assert sum(counts.values()) > 0


@pytest.mark.parametrize("interval", ["hour", "week", "month"])
def test_intervals_by_dimension_in_a_timezone(http: httpx.Client, interval: str) -> None:
    opened = metric_id(http, "Opened Email")
    days = 20 if interval == "hour" else 90
    start, end = window(http, days)
    tz = ZoneInfo("America/New_York")
    r = query(
        http,
        metric_id=opened,
        measurements=["count"],
        interval=interval,
        by=["$message"],
        timezone="America/New_York",
        filter=[
            f"greater-or-equal(datetime,{start.isoformat()})",
            f"less-than(datetime,{end.isoformat()})",
        ],
    )
    assert r.status_code == 200, r.text
    attrs = r.json()["data"]["attributes"]
    dates = [datetime.fromisoformat(d) for d in attrs["dates"]]
    assert dates[0] <= start < (dates[1] if len(dates) > 1 else end)
    expected: dict[tuple[str, str], int] = defaultdict(int)
    for e in events_of(http, opened):
        when = datetime.fromisoformat(e["attributes"]["datetime"])
        if start <= when < end:
            message = str(e["attributes"]["event_properties"].get("$message", ""))
            expected[(message, bucket(when, interval, tz))] += 1
    got: dict[tuple[str, str], int] = {}
    for row in attrs["data"]:
        [message] = row["dimensions"]
        for d, n in zip(dates, row["measurements"]["count"], strict=True):
            if n:
                got[(message, d.isoformat())] = n
    assert got == dict(expected)
    assert expected, "no opens in the window"


def test_a_dimension_filter_narrows_the_events(http: httpx.Client) -> None:
    opened = metric_id(http, "Opened Email")
    start, end = window(http, 120)
    base = [
        f"greater-or-equal(datetime,{start.isoformat()})",
        f"less-than(datetime,{end.isoformat()})",
    ]
    by_message = query(
        http, metric_id=opened, measurements=["count"], interval="month", by=["$message"],
        filter=base,
    ).json()["data"]["attributes"]["data"]  # fmt: skip
    first = by_message[0]
    narrowed = query(
        http, metric_id=opened, measurements=["count"], interval="month",
        filter=[*base, f'equals($message,"{first["dimensions"][0]}")'],
    ).json()["data"]["attributes"]["data"]  # fmt: skip
    assert narrowed[0]["measurements"]["count"] == first["measurements"]["count"]


def test_bad_queries_are_400_and_an_unknown_metric_404(http: httpx.Client) -> None:
    opened = metric_id(http, "Opened Email")
    start, end = window(http, 7)
    span = [
        f"greater-or-equal(datetime,{start.isoformat()})",
        f"less-than(datetime,{end.isoformat()})",
    ]
    no_range = query(http, metric_id=opened, measurements=["count"], filter=[])
    assert no_range.status_code == 400
    assert "datetime" in no_range.json()["errors"][0]["detail"]
    bad_tz = query(
        http, metric_id=opened, measurements=["count"], filter=span, timezone="Mars/Base"
    )
    assert bad_tz.status_code == 400
    bad_measure = query(http, metric_id=opened, measurements=["median"], filter=span)
    assert bad_measure.status_code == 400
    unknown = query(http, metric_id="NoSuch", measurements=["count"], filter=span)
    assert unknown.status_code == 404
