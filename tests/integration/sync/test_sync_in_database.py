"""Events read into rows by DuckDB itself: the same rows as the Python extractor gives,
and the Python way again for pages the database cannot read."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from kbridge import sync
from kbridge.core import SystemClock, dumps, loads
from kbridge.emulator.config import EmulatorConfig
from kbridge.emulator.server import EmulatorServer
from kbridge.sync.columns import Field, TableSpec, at, attr
from kbridge.sync.streams import get_stream
from kbridge.sync.tables import EVENTS as EVENT_SPEC
from kbridge.sync.tables import PROFILES as PROFILE_SPEC
from kbridge.warehouse import Batch, PageRows, PageShapeError, StateUpdate
from kbridge.warehouse.duckdb import DuckDBWarehouse

from .conftest import client_for, snapshot

pytestmark = pytest.mark.integration

EVENTS = EVENT_SPEC.table
assert EVENT_SPEC.from_json is not None
EVENT_PATHS = EVENT_SPEC.from_json
CURSOR = ("attributes", "datetime")
#: no re-read behind a bookmark: a resumed run must then be exact on its own
_NO_LOOKBACK = timedelta(0)


def _page(http: httpx.Client) -> bytes:
    response = http.get("/api/events", params={"page[size]": 50, "sort": "datetime"})
    response.raise_for_status()
    return response.content


def _odd_page(body: bytes) -> bytes:
    """The served page with the shapes a future or careless API could send."""
    doc = loads(body)
    data = doc["data"]
    data[0]["attributes"]["event_properties"] = {"q": 'it\'s "quoted" \u2028 é', "n": [1, 2.5]}
    data[1]["attributes"] = None  # no attributes at all
    data[2]["attributes"]["timestamp"] = 1733304622.9  # a fraction: truncated, as int() does
    data[3]["attributes"]["event_properties"] = None
    data[4]["attributes"]["new_attribute"] = {"kept": True}  # unknown: kept in raw
    del data[5]["relationships"]["metric"]
    return dumps(doc)


def _odd_profiles(body: bytes) -> bytes:
    doc = loads(body)
    data = doc["data"]
    data[0]["attributes"]["subscriptions"] = None
    data[1]["attributes"] = None
    data[2]["attributes"]["subscriptions"]["email"] = {"marketing": None}
    data[3]["attributes"]["properties"] = {"nested": {"list": [1, "two", None]}, "é": "\u2028"}
    data[4]["attributes"]["location"] = None
    data[5]["attributes"]["new_attribute"] = [1, 2]
    data[6]["attributes"]["first_name"] = 'O\'Brien "Bob"'
    return dumps(doc)


#: stream → (collection, params, odd-shape mutator)
PAGES = {
    "events": ("/api/events", {"sort": "datetime"}, _odd_page),
    "profiles": ("/api/profiles", {"additional-fields[profile]": "subscriptions"}, _odd_profiles),
}


@pytest.mark.parametrize("stream_name", list(PAGES))
@pytest.mark.parametrize("odd", [False, True], ids=["served", "odd shapes"])
def test_duckdb_reads_a_page_into_the_rows_python_extracts(
    http: httpx.Client, stream_name: str, odd: bool
) -> None:
    path, params, mutate = PAGES[stream_name]
    response = http.get(path, params={"page[size]": 50, **params})
    response.raise_for_status()
    body = mutate(response.content) if odd else response.content
    stream = get_stream(stream_name)
    assert stream.from_json is not None
    python, database = DuckDBWarehouse(":memory:"), DuckDBWarehouse(":memory:")
    try:
        for wh in (python, database):
            wh.migrate([stream.table])
        rows = [("acct", *stream.extract(r, None)) for r in loads(body)["data"]]
        python.commit(Batch("acct").upsert(stream.table, rows))
        page = PageRows(stream.table, body, stream.from_json)
        database.load_pages("acct", [page], [])
        expected = snapshot(python, stream.table)
        assert len(expected) == 50
        assert snapshot(database, stream.table) == expected
        # the same page again meets its own keys: upserted, not doubled
        database.load_pages("acct", [page], [])
        assert snapshot(database, stream.table) == expected
    finally:
        python.close()
        database.close()


#: stream → a copy of its table with columns inserted in the middle: a path beside the
#: others (under ``relationships`` / at the top), and an attribute that takes a column of
#: its own (so it leaves ``other_attributes``)
def _metric_type(record: dict[str, Any]) -> Any:
    return ((record.get("relationships") or {}).get("metric") or {}).get("data", {}).get("type")


WIDER: dict[str, tuple[TableSpec, dict[str, Callable[[dict[str, Any]], Any]]]] = {
    "events": (
        EVENT_SPEC.inserted(
            2, Field("metric_type", source=at("relationships", "metric", "data", "type"))
        ).inserted(5, Field("new_attribute", "json", attr("new_attribute"))),
        {"metric_type": _metric_type},
    ),
    "profiles": (
        PROFILE_SPEC.inserted(1, Field("record_type", source=at("type"))).inserted(
            12, Field("new_attribute", "json", attr("new_attribute"))
        ),
        {"record_type": lambda record: record["type"]},
    ),
}


@pytest.mark.parametrize("stream_name", list(PAGES))
@pytest.mark.parametrize("odd", [False, True], ids=["served", "odd shapes"])
def test_a_column_inserted_in_the_middle_keeps_both_readers_agreeing_value_for_value(
    http: httpx.Client, stream_name: str, odd: bool
) -> None:
    """One declaration feeds the DDL, the Python extractor and the in-database reader:
    a table grown in the middle reads the same pages into the same rows both ways, and
    every column keeps the value of its own name (nothing shifted)."""
    path, params, mutate = PAGES[stream_name]
    response = http.get(path, params={"page[size]": 50, **params})
    response.raise_for_status()
    body = mutate(response.content) if odd else response.content
    wider, inserted = WIDER[stream_name]
    base = get_stream(stream_name).spec
    assert wider.from_json is not None
    assert len(wider.column_names) == len(base.column_names) + 2
    python, database = DuckDBWarehouse(":memory:"), DuckDBWarehouse(":memory:")
    try:
        for wh in (python, database):
            wh.migrate([wider.table])
        records = loads(body)["data"]
        rows = [("acct", *wider.extract(r, None)) for r in records]
        python.commit(Batch("acct").upsert(wider.table, rows))
        database.load_pages("acct", [PageRows(wider.table, body, wider.from_json)], [])
        expected = snapshot(python, wider.table)
        assert len(expected) == 50
        assert snapshot(database, wider.table) == expected
    finally:
        python.close()
        database.close()
    for record, row in zip(records, rows, strict=True):
        by_name = dict(zip(wider.column_names, row, strict=True))
        narrow = dict(zip(base.column_names, ("acct", *base.extract(record, None)), strict=True))
        for name, value in narrow.items():
            if name != "other_attributes":
                assert by_name[name] == value, name
        for name, read in inserted.items():
            assert by_name[name] == read(record)
        attributes = record.get("attributes") or {}
        new = attributes.get("new_attribute")
        assert by_name["new_attribute"] == (None if new is None else dumps(new).decode())
        others = loads(by_name["other_attributes"])
        assert "new_attribute" not in others
    for read in inserted.values():
        assert {read(r) for r in records} - {None}  # the inserted column holds values
    if odd:  # the mutated page holds one record with the new attribute
        assert any(r[wider.column_names.index("new_attribute")] for r in rows)


@pytest.mark.parametrize("is_sorted", [True, False], ids=["sorted", "unsorted"])
def test_page_info_gives_next_link_and_latest_cursor(http: httpx.Client, is_sorted: bool) -> None:
    body = _page(http)
    doc: dict[str, Any] = loads(body)
    if not is_sorted:  # the latest first: only a page read whole finds it
        doc["data"].reverse()
        body = dumps(doc)
    wh = DuckDBWarehouse(":memory:")
    try:
        info = wh.page_info(PageRows(EVENTS, body, EVENT_PATHS, CURSOR, is_sorted))
        wh.migrate([EVENTS])
        counts = wh.load_pages("acct", [PageRows(EVENTS, body, EVENT_PATHS)] * 2, [])
    finally:
        wh.close()
    assert counts == 100  # the second time as an upsert of the same keys
    assert info.next_url == doc["links"]["next"]
    latest = max(r["attributes"]["datetime"] for r in doc["data"])
    assert is_sorted or doc["data"][-1]["attributes"]["datetime"] != latest
    assert info.latest is not None
    assert info.latest.isoformat() == latest


def test_a_record_met_again_on_a_later_page_of_one_load_keeps_its_later_version(
    http: httpx.Client,
) -> None:
    """Pages go into one statement together; a record that moved on to a later page
    while the pages were read (updated meanwhile) is there twice, and the later wins."""
    first = loads(_page(http))
    response = http.get(first["links"]["next"])
    response.raise_for_status()
    later = loads(response.content)
    later["data"][7] = dict(first["data"][0])
    later["data"][7]["attributes"] = {**first["data"][0]["attributes"], "uuid": "moved-on"}
    wh = DuckDBWarehouse(":memory:")
    try:
        wh.migrate([EVENTS])
        pages = [PageRows(EVENTS, dumps(doc), EVENT_PATHS) for doc in (first, later)]
        wh.load_pages("acct", pages, [])
        rows = wh.query("SELECT uuid FROM events WHERE id = ?", [first["data"][0]["id"]])
        total = wh.query("SELECT count(*) FROM events")
    finally:
        wh.close()
    assert rows == [("moved-on",)]
    distinct = {r["id"] for r in first["data"]} | {r["id"] for r in later["data"]}
    assert total == [(len(distinct),)]


def test_an_unreadable_body_writes_nothing_and_says_so() -> None:
    wh = DuckDBWarehouse(":memory:")
    try:
        wh.migrate([EVENTS])
        state = [StateUpdate("events", "w", {"bookmark": "x"})]
        for body in (b'{"data": [', b"\xff\xfe not utf-8"):
            page = PageRows(EVENTS, body, EVENT_PATHS, CURSOR)
            with pytest.raises(PageShapeError):
                wh.page_info(page)
            with pytest.raises(PageShapeError):
                wh.load_pages("acct", [page], state)
        assert wh.query("SELECT count(*) FROM events") == [(0,)]
        assert wh.load_state("acct", "events") == {}
    finally:
        wh.close()


class _NoPageReading(DuckDBWarehouse):
    """DuckDB that refuses every page body, as it would a shape it cannot read."""

    def page_info(self, page: PageRows) -> Any:
        raise PageShapeError("refused for the test")

    def load_pages(self, account_id: str, pages: Any, state: Any) -> None:
        raise PageShapeError("refused for the test")


@pytest.mark.parametrize(("stream_name", "least"), [("events", 3000), ("profiles", 120)])
def test_pages_the_database_refuses_are_synced_the_python_way(
    server: EmulatorServer, stream_name: str, least: int
) -> None:
    async def go(wh: DuckDBWarehouse) -> sync.SyncResult:
        async with client_for(server) as client:
            return await sync.run(client, wh, streams=[stream_name])

    table = get_stream(stream_name).table
    native, fallback = DuckDBWarehouse(":memory:"), _NoPageReading(":memory:")
    try:
        a = asyncio.run(go(native))
        b = asyncio.run(go(fallback))
        expected = snapshot(native, table)
        assert len(expected) >= least  # the account's generated records
        assert a.streams[stream_name].records == b.streams[stream_name].records == len(expected)
        assert snapshot(fallback, table) == expected
        assert (
            fallback.load_state(a.account_id, stream_name)[""]
            == native.load_state(a.account_id, stream_name)[""]
        )
    finally:
        native.close()
        fallback.close()


class _CrashAfterLoads:
    """DuckDB that reads pages itself and crashes before its ``n``-th page commit."""

    def __init__(self, inner: DuckDBWarehouse, n: int) -> None:
        self.inner, self.left, self.loads = inner, n, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def load_pages(self, account_id: str, pages: Any, state: Any) -> int:
        if self.left <= 0:
            raise RuntimeError("injected crash before a page commit")
        self.left -= 1
        self.loads += 1
        windows = {u.partition for u in state}
        assert len(windows) == len(state), "one bookmark per window in a commit"
        return self.inner.load_pages(account_id, pages, state)


def test_a_crash_between_page_commits_resumes_without_loss_or_doubles(
    server: EmulatorServer,
) -> None:
    async def go(wh: Any) -> sync.SyncResult:
        async with client_for(server) as client:
            return await sync.run(client, wh, streams=["events"], lookback={"events": _NO_LOOKBACK})

    reference, resumed = DuckDBWarehouse(":memory:"), DuckDBWarehouse(":memory:")
    try:
        asyncio.run(go(reference))
        crashing = _CrashAfterLoads(resumed, 2)
        with pytest.raises(sync.SyncError, match="injected crash"):
            asyncio.run(go(crashing))
        assert crashing.loads == 2
        partial = snapshot(resumed, EVENTS)
        assert 0 < len(partial) < len(snapshot(reference, EVENTS))
        states = resumed.load_state(next(iter(partial))[0], "events")
        assert any(k.startswith("slice:") for k in states)  # windows kept their bookmarks
        asyncio.run(go(resumed))
        assert snapshot(resumed, EVENTS) == snapshot(reference, EVENTS)
    finally:
        reference.close()
        resumed.close()


class _CountingLoads(DuckDBWarehouse):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.loads: list[int] = []

    def load_pages(self, account_id: str, pages: Any, state: Any) -> int:
        self.loads.append(len(pages))
        return super().load_pages(account_id, pages, state)


class _TenSecondsACall(SystemClock):
    """Real dates, but ten seconds pass between any two looks at the monotonic clock."""

    def __init__(self) -> None:
        self.ticks = 0.0

    def monotonic(self) -> float:
        self.ticks += 10.0
        return self.ticks


def test_pages_wait_for_a_commit_no_longer_than_a_few_seconds() -> None:
    """The first page is committed at once (a run killed early keeps it); the rest merge
    until the last page, or until the first of them has waited a few seconds."""

    async def go(wh: DuckDBWarehouse, clock: SystemClock) -> sync.SyncResult:
        async with client_for(server) as client:
            return await sync.run(client, wh, streams=["profiles"], clock=clock)

    quick, slow = _CountingLoads(":memory:"), _CountingLoads(":memory:")
    config = EmulatorConfig(seed=7, profiles=350, events=0, rate_limit_factor=None)
    try:
        with EmulatorServer(config) as server:
            asyncio.run(go(quick, SystemClock()))
            asyncio.run(go(slow, _TenSecondsACall()))
        assert quick.loads == [1, 3]  # 350 profiles: the first page, then the other three
        assert slow.loads == [1, 1, 1, 1]  # each page waited past the limit: committed alone
        assert snapshot(slow, get_stream("profiles").table) == snapshot(
            quick, get_stream("profiles").table
        )
    finally:
        quick.close()
        slow.close()
