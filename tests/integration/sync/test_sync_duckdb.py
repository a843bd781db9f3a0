"""Full, incremental, resumed and reconciling syncs from the emulator into DuckDB.

The warehouse is compared with what the API serves (read with a plain HTTP
client) and with the emulator's ground truth, never with kbridge's own reads.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from kbridge import sync
from kbridge.api import AsyncClient, ClientConfig, LimiterConfig
from kbridge.core import ManualClock, loads
from kbridge.emulator.server import EmulatorServer
from kbridge.sync.streams import get_stream
from kbridge.warehouse import open_warehouse
from kbridge.warehouse.duckdb import DuckDBWarehouse

from .conftest import SERVED, FailAfter, api_all, client_for, snapshot

pytestmark = pytest.mark.integration

# stream → (collection path, params) whose resources must equal the table's rows
COLLECTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "profiles": ("/api/profiles", {"additional-fields[profile]": "subscriptions"}),
    "lists": ("/api/lists", {}),
    "segments": ("/api/segments", {}),
    "metrics": ("/api/metrics", {}),
    "events": ("/api/events", {"page[size]": 1000}),
    "templates": ("/api/templates", {}),
    "tags": ("/api/tags", {}),
    "flows": ("/api/flows", {}),
}


def full_sync(server: EmulatorServer, wh: Any, **kwargs: Any) -> sync.SyncResult:
    """One sync run, on its own event loop (as the CLI does)."""

    async def go() -> sync.SyncResult:
        async with client_for(server) as client:
            return await sync.run(client, wh, **kwargs)

    return asyncio.run(go())


def attributes_by_id(wh: DuckDBWarehouse, stream: str) -> dict[str, Any]:
    """Each row's attributes as the API served them: its ``raw`` copy, or (tables whose
    every attribute has a column) the columns of the attributes beside
    ``other_attributes``, timestamps in Klaviyo's notation."""
    table = get_stream(stream).table
    if "raw" in table.column_names:
        rows = wh.query(f"SELECT id, CAST(raw AS VARCHAR) FROM {table.name}")  # noqa: S608
        return {i: loads(r) for i, r in rows}
    types = {c.name: c.type for c in table.columns}
    paths = get_stream(stream).from_json or {}
    held = [n for n, p in paths.items() if len(p.path) == 2 and p.path[0] == "attributes"]
    cols = ", ".join(f"CAST({n} AS VARCHAR)" if types[n] == "json" else n for n in held)
    query = f"SELECT id, {cols}, CAST(other_attributes AS VARCHAR) FROM {table.name}"  # noqa: S608
    out: dict[str, Any] = {}
    for i, *values, others in wh.query(query):
        attributes = loads(others)
        for name, value in zip(held, values, strict=True):
            if types[name] == "json":
                value = None if value is None else loads(value)
            elif isinstance(value, datetime):
                value = value.astimezone(UTC).isoformat()
            attributes[name] = value
        out[i] = attributes
    return out


def _as_served(attributes: dict[str, Any]) -> dict[str, Any]:
    """Timestamps in the one notation ``attributes_by_id`` gives."""
    out = dict(attributes)
    for k, v in attributes.items():
        if isinstance(v, str) and len(v) >= 19 and v[4] == "-" and v[10] == "T":
            out[k] = datetime.fromisoformat(v).astimezone(UTC).isoformat()
    return out


@pytest.fixture(scope="module")
def synced(server: EmulatorServer) -> DuckDBWarehouse:
    wh = DuckDBWarehouse(":memory:")
    full_sync(server, wh, streams=SERVED)
    return wh


@pytest.mark.parametrize("stream", sorted(COLLECTIONS))
def test_a_full_sync_holds_exactly_what_the_api_serves(
    synced: DuckDBWarehouse, http: httpx.Client, stream: str
) -> None:
    path, params = COLLECTIONS[stream]
    expected = {r["id"]: _as_served(r["attributes"]) for r in api_all(http, path, params)}
    assert expected, f"the emulator serves no {stream}: the comparison would prove nothing"
    held = {
        # a column stays NULL for an attribute not served (predictive_analytics unasked)
        i: {k: v for k, v in _as_served(a).items() if v is not None or k in expected.get(i, {})}
        for i, a in attributes_by_id(synced, stream).items()
    }
    assert held == expected


def test_counts_agree_with_the_emulators_ground_truth(
    synced: DuckDBWarehouse, http: httpx.Client
) -> None:
    truth = http.get("/_emulator/truth").json()["aggregates"]
    assert synced.query("SELECT count(*) FROM profiles") == [(truth["profiles"],)]
    assert synced.query("SELECT count(*) FROM events") == [(truth["events"],)]
    per_metric = dict(
        synced.query(
            "SELECT m.name, count(*) FROM events e JOIN metrics m ON m.id = e.metric_id"
            " AND m.account_id = e.account_id GROUP BY m.name"
        )
    )
    assert per_metric == truth["events_per_metric"]


def test_events_keep_their_profile_and_metric_links(
    synced: DuckDBWarehouse, http: httpx.Client
) -> None:
    some = http.get("/api/events", params={"page[size]": 5}).json()["data"]
    assert len(some) == 5
    for event in some:
        row = synced.query("SELECT metric_id, profile_id FROM events WHERE id = ?", [event["id"]])
        rel = event["relationships"]
        assert row == [(rel["metric"]["data"]["id"], rel["profile"]["data"]["id"])]


def test_memberships_equal_each_lists_and_segments_members(
    synced: DuckDBWarehouse, http: httpx.Client
) -> None:
    for kind, table, column in (
        ("lists", "list_memberships", "list_id"),
        ("segments", "segment_memberships", "segment_id"),
    ):
        parents = api_all(http, f"/api/{kind}")
        assert parents, kind
        members_seen = 0
        for parent in parents:
            members = api_all(
                http,
                f"/api/{kind}/{parent['id']}/profiles",
                {"fields[profile]": "joined_group_at"},
            )
            expected = {(m["id"], _ts(m["attributes"]["joined_group_at"])) for m in members}
            rows = synced.query(
                f"SELECT profile_id, CAST(joined_group_at AS VARCHAR) FROM {table}"  # noqa: S608
                f" WHERE {column} = ?",
                [parent["id"]],
            )
            assert set(rows) == expected
            members_seen += len(rows)
        assert members_seen, f"no {kind} member was compared"


def test_campaigns_of_both_channels_arrive_with_their_messages(
    synced: DuckDBWarehouse, http: httpx.Client
) -> None:
    expected: dict[str, str] = {}
    messages: set[str] = set()
    for channel in ("email", "sms"):
        found = api_all(
            http,
            "/api/campaigns",
            {"filter": f"equals(messages.channel,'{channel}')", "include": "campaign-messages"},
        )
        for c in found:
            expected[c["id"]] = channel
            rel = c["relationships"]["campaign-messages"]["data"]
            messages.update(m["id"] for m in rel)
    assert expected
    assert dict(synced.query("SELECT id, channel FROM campaigns")) == expected
    assert {r[0] for r in synced.query("SELECT id FROM campaign_messages")} == messages


def test_a_second_run_fetches_only_the_tail_and_changes_nothing(
    server: EmulatorServer, synced: DuckDBWarehouse
) -> None:
    tables = [t for name in SERVED for t in get_stream(name).tables]
    before = {t.name: snapshot(synced, t) for t in tables}
    result = full_sync(server, synced, streams=SERVED)
    assert {t.name: snapshot(synced, t) for t in tables} == before
    # only the lookback window behind each bookmark is read again (events 7 days,
    # profiles 1 day), and re-reading it changed nothing
    recent_events = synced.query(
        "SELECT count(*) FROM events"
        " WHERE datetime >= (SELECT max(datetime) FROM events) - INTERVAL 7 DAY"
    )[0][0]
    recent_profiles = synced.query(
        "SELECT count(*) FROM profiles"
        " WHERE updated > (SELECT max(updated) FROM profiles) - INTERVAL 1 DAY - INTERVAL 2 SECOND"
    )[0][0]
    assert 0 < recent_events < len(before["events"])
    assert result.streams["events"].records == recent_events
    assert result.streams["profiles"].records <= recent_profiles < len(before["profiles"])


def test_a_crash_at_any_commit_resumes_to_the_same_tables(
    server: EmulatorServer, synced: DuckDBWarehouse
) -> None:
    streams = ["profiles", "events", "list_memberships", "campaigns"]
    tables = [t for name in streams for t in get_stream(name).tables]
    reference = {t.name: snapshot(synced, t) for t in tables}
    partial_events: list[int] = []
    for crash_after in (0, 1, 3, 7, 15, 23):
        inner = DuckDBWarehouse(":memory:")
        with pytest.raises(sync.SyncError, match="injected crash"):
            full_sync(server, FailAfter(inner, crash_after), streams=streams)
        had = len(snapshot(inner, get_stream("events").table))
        partial_events.append(had)
        result = full_sync(server, inner, streams=streams)
        assert {t.name: snapshot(inner, t) for t in tables} == reference
        # resumed, not restarted: only what was missing (plus same-second ties) is re-read
        total = len(reference["events"])
        assert result.streams["events"].records <= total - had + 10
        inner.close()
    assert any(0 < h < len(reference["events"]) for h in partial_events), partial_events


def test_start_date_limits_the_first_run_and_then_the_bookmark_rules(
    server: EmulatorServer, http: httpx.Client
) -> None:
    start = datetime(2026, 6, 1, tzinfo=UTC)
    wh = DuckDBWarehouse(":memory:")
    full_sync(server, wh, streams=["events"], start_date=start)
    expected = api_all(
        http,
        "/api/events",
        {"filter": "greater-or-equal(datetime,2026-06-01T00:00:00+00:00)", "page[size]": 1000},
    )
    assert 0 < len(expected) < 3000
    assert wh.query("SELECT count(*) FROM events") == [(len(expected),)]
    assert wh.query("SELECT min(datetime) >= TIMESTAMPTZ '2026-06-01 00:00:00+00' FROM events") == [
        (True,)
    ]
    again = full_sync(server, wh, streams=["events"], start_date=datetime(2020, 1, 1, tzinfo=UTC))
    recent = wh.query(
        "SELECT count(*) FROM events"
        " WHERE datetime >= (SELECT max(datetime) FROM events) - INTERVAL 7 DAY"
    )[0][0]
    # the bookmark (less the lookback) wins over a start date
    assert again.streams["events"].records == recent < len(expected)
    wh.close()


def test_events_dated_after_the_runs_start_are_synced_and_the_bookmark_stays_behind(
    server: EmulatorServer, http: httpx.Client
) -> None:
    """An event can carry a time ahead of now (sent so); the API serves it, so the sync
    must hold it, and its bookmark must not jump ahead of the run and skip what comes."""
    served = api_all(http, "/api/events", {"page[size]": 1000, "sort": "datetime"})
    middle = datetime.fromisoformat(served[len(served) // 2]["attributes"]["datetime"])
    ahead = [e for e in served if datetime.fromisoformat(e["attributes"]["datetime"]) > middle]
    assert ahead, "no event after the run's clock: nothing proven"

    async def go(wh: DuckDBWarehouse) -> sync.SyncResult:
        clock = ManualClock(middle)  # the run's "now": half the events are dated after it
        async with AsyncClient(server.api_key, base_url=server.base_url, clock=clock) as client:
            return await sync.run(client, wh, streams=["events"], clock=clock)

    wh = DuckDBWarehouse(":memory:")
    try:
        asyncio.run(go(wh))
        assert wh.query("SELECT count(*), count(DISTINCT id) FROM events") == [
            (len(served), len(served))
        ]
        bookmark = loads(
            wh.query(
                "SELECT CAST(value AS VARCHAR) FROM _kbridge_state WHERE stream = 'events'"
                " AND partition = ''"
            )[0][0]
        )["bookmark"]
        assert datetime.fromisoformat(bookmark) <= middle + timedelta(seconds=1)
        again = asyncio.run(go(wh))  # the ones ahead are read again, and upserted
        assert again.streams["events"].records >= len(ahead)
        assert wh.query("SELECT count(*), count(DISTINCT id) FROM events") == [
            (len(served), len(served))
        ]
    finally:
        wh.close()


def test_destination_urls_open_the_right_dialect(tmp_path: Any, server: EmulatorServer) -> None:
    url = f"duckdb:///{tmp_path}/k.duckdb"
    full_sync(server, url, streams=["lists"])
    wh = open_warehouse(url)
    assert wh.query("SELECT count(*) FROM lists")[0][0] > 0
    wh.close()


def _ts(value: str) -> str:
    """API timestamp → how DuckDB prints a TIMESTAMPTZ in UTC."""
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S+00")


def test_daily_campaign_values_add_up_to_the_report_for_the_whole_period(
    synced: DuckDBWarehouse, http: httpx.Client
) -> None:
    days = synced.query(
        "SELECT CAST(min(day) AS VARCHAR), CAST(max(day) AS VARCHAR), count(DISTINCT day)"
        " FROM campaign_values_daily"
    )
    state = dict(synced.query("SELECT stream, CAST(value AS VARCHAR) FROM _kbridge_state"))
    bookmark = loads(state["campaign_values_daily"])["bookmark"]
    end = datetime.fromisoformat(bookmark) + timedelta(days=1)
    start = end - timedelta(days=30)
    metric = next(
        m["id"] for m in api_all(http, "/api/metrics") if m["attributes"]["name"] == "Placed Order"
    )
    stats = ["recipients", "opens", "clicks", "conversions"]
    body = {
        "data": {
            "type": "campaign-values-report",
            "attributes": {
                "statistics": stats,
                "timeframe": {"start": start.isoformat(), "end": end.isoformat()},
                "conversion_metric_id": metric,
                "group_by": ["campaign_id", "campaign_message_id", "send_channel"],
            },
        }
    }
    response = http.post(
        "/api/campaign-values-reports",
        json=body,
        headers={"content-type": "application/vnd.api+json"},
    )
    assert response.status_code == 200, response.text
    expected = {
        r["groupings"]["campaign_message_id"]: tuple(int(r["statistics"][s]) for s in stats)
        for r in response.json()["data"]["attributes"]["results"]
        if any(r["statistics"][s] for s in stats)
    }
    assert expected, f"no campaign activity in the 30 synced days {days}: nothing proven"
    got = {
        row[0]: tuple(int(v) for v in row[1:])
        for row in synced.query(
            "SELECT campaign_message_id, sum(recipients), sum(opens), sum(clicks),"
            " sum(conversions) FROM campaign_values_daily GROUP BY 1"
        )
        if any(row[1:])
    }
    assert got == expected


def test_a_connection_object_is_accepted_and_its_client_closed(server: EmulatorServer) -> None:
    made: list[Any] = []

    class Connection:
        def client(self, **kwargs: Any) -> Any:
            made.append(client_for(server))
            return made[-1]

    wh = DuckDBWarehouse(":memory:")
    result = asyncio.run(sync.run(Connection(), wh, streams=["tags"]))
    assert result.streams["tags"].records == wh.query("SELECT count(*) FROM tags")[0][0] > 0
    assert len(made) == 1
    assert made[0]._http.is_closed
    wh.close()


class LoseFirstWindow(FailAfter):
    """The state a kill leaves when the earliest event window's page was still in flight
    while later windows committed: its commits never happen, and the process dies before
    the stream's final commit."""

    def __init__(self, inner: DuckDBWarehouse) -> None:
        super().__init__(inner, 10**9)
        self.lost = 0

    def commit(self, batch: Any) -> None:
        plan = self.inner.load_state(batch.account_id, "events").get("plan")
        first = f"slice:{plan['lower']}" if plan else None
        if any(u.partition == "" for u in batch.state):
            raise RuntimeError("killed before the final commit")
        if any(u.partition == first for u in batch.state):
            self.lost += 1
            return
        self.inner.commit(batch)


def test_a_resume_after_later_windows_committed_still_reads_the_first(
    server: EmulatorServer, synced: DuckDBWarehouse
) -> None:
    events = get_stream("events").table
    wh = DuckDBWarehouse(":memory:")
    lossy = LoseFirstWindow(wh)
    with pytest.raises(sync.SyncError, match="killed"):
        full_sync(server, lossy, streams=["events"])
    assert lossy.lost >= 1
    assert 0 < len(snapshot(wh, events)) < len(snapshot(synced, events))
    full_sync(server, wh, streams=["events"])
    assert snapshot(wh, events) == snapshot(synced, events)
    account = wh.query("SELECT DISTINCT account_id FROM events")[0][0]
    assert set(wh.load_state(account, "events")) == {""}, "plan and windows are cleared"
    wh.close()


def test_predictive_analytics_only_when_asked(
    server: EmulatorServer, synced: DuckDBWarehouse
) -> None:
    assert synced.query("SELECT count(predictive_analytics) FROM profiles") == [(0,)]
    wh = DuckDBWarehouse(":memory:")
    full_sync(server, wh, streams=["profiles"], predictive_analytics=True)
    total, with_pa = wh.query("SELECT count(*), count(predictive_analytics) FROM profiles")[0]
    assert total == with_pa > 0
    assert wh.query(
        "SELECT count(*) FROM profiles"
        " WHERE json_extract(predictive_analytics, '$.churn_probability') IS NOT NULL"
    ) == [(total,)]
    wh.close()


def test_a_sync_asked_to_collects_garbage_less_often_and_restores_the_threshold(
    server: EmulatorServer, tmp_path: Any
) -> None:
    import gc

    from kbridge.sync import engine

    before = gc.get_threshold()
    during: list[int] = []
    url = f"duckdb:///{tmp_path}/gc.duckdb"
    full_sync(
        server,
        url,
        streams=["tags"],
        fewer_collections=True,
        on_progress=lambda *_: during.append(gc.get_threshold()[0]),
    )
    assert during
    assert set(during) == {engine.GC_GEN0_THRESHOLD}
    assert gc.get_threshold() == before
    gc.set_threshold(engine.GC_GEN0_THRESHOLD * 2, *before[1:])  # an application's own choice
    try:
        full_sync(
            server,
            url,
            streams=["tags"],
            fewer_collections=True,
            on_progress=lambda *_: during.append(gc.get_threshold()[0]),
        )
        assert during[-1] == engine.GC_GEN0_THRESHOLD * 2  # never lowered
    finally:
        gc.set_threshold(*before)


def test_a_sync_reports_its_share_of_the_pace_it_kept(
    tmp_path: Path, server: EmulatorServer
) -> None:
    async def synced(factor: float | None) -> tuple[float | None, int]:
        config = ClientConfig(limiter=LimiterConfig(limit_factor=factor))
        async with AsyncClient(server.api_key, base_url=server.base_url, config=config) as c:
            result = await sync.run(c, f"duckdb:///{tmp_path}/{factor}.duckdb", streams=["metrics"])
        r = result.streams["metrics"]
        # what the windows allowed in the stream's time: at least the one page it took
        assert (r.budget_allowed is None) == (factor is None)
        assert r.budget_allowed is None or r.budget_allowed >= r.pages
        return r.budget_rate, r.budget_burst

    # GET /api/metrics, 10/s and 150/m: 95 % of 150 a minute after a first burst of 6
    assert asyncio.run(synced(1.0)) == (pytest.approx(0.95 * 150 / 60), 6)
    # at 0.05 the limits are 1/s and 7/m (floors, at least 1): one at once, then 95 % of 7/m
    assert asyncio.run(synced(0.05)) == (pytest.approx(0.95 * 7 / 60), 1)
    assert asyncio.run(synced(None)) == (None, 0)  # unpaced: no budget to report
