"""Events read into rows by DuckDB itself: the same rows as the Python extractor gives,
and the Python way again for pages the database cannot read."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import httpx
import pytest

from kbridge import sync
from kbridge.core import dumps, loads
from kbridge.emulator.server import EmulatorServer
from kbridge.sync.streams import EVENT_PATHS, EVENTS, get_stream
from kbridge.warehouse import Batch, PageRows, PageShapeError, StateUpdate
from kbridge.warehouse.duckdb import DuckDBWarehouse

from .conftest import client_for, snapshot

pytestmark = pytest.mark.integration

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


def _python_rows(wh: DuckDBWarehouse, body: bytes) -> None:
    stream = get_stream("events")
    rows = [("acct", *stream.extract(r, None)) for r in loads(body)["data"]]
    wh.commit(Batch("acct").upsert(EVENTS, rows))


def _database_rows(wh: DuckDBWarehouse, body: bytes, state: Sequence[StateUpdate] = ()) -> None:
    wh.load_pages("acct", [PageRows(EVENTS, body, EVENT_PATHS, CURSOR)], state)


@pytest.mark.parametrize("odd", [False, True], ids=["served", "odd shapes"])
def test_duckdb_reads_a_page_into_the_rows_python_extracts(http: httpx.Client, odd: bool) -> None:
    body = _page(http)
    if odd:
        body = _odd_page(body)
    python, database = DuckDBWarehouse(":memory:"), DuckDBWarehouse(":memory:")
    try:
        for wh in (python, database):
            wh.migrate([EVENTS])
        _python_rows(python, body)
        _database_rows(database, body)
        expected = snapshot(python, EVENTS)
        assert len(expected) == 50
        assert snapshot(database, EVENTS) == expected
        # the same page again meets its own keys: upserted, not doubled
        _database_rows(database, body)
        assert snapshot(database, EVENTS) == expected
    finally:
        python.close()
        database.close()


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
    assert counts == [50, 50]  # the second time as an upsert of the same keys
    assert info.next_url == doc["links"]["next"]
    latest = max(r["attributes"]["datetime"] for r in doc["data"])
    assert is_sorted or doc["data"][-1]["attributes"]["datetime"] != latest
    assert info.latest is not None
    assert info.latest.isoformat() == latest


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


def test_pages_the_database_refuses_are_synced_the_python_way(server: EmulatorServer) -> None:
    async def go(wh: DuckDBWarehouse) -> sync.SyncResult:
        async with client_for(server) as client:
            return await sync.run(client, wh, streams=["events"])

    native, fallback = DuckDBWarehouse(":memory:"), _NoPageReading(":memory:")
    try:
        a = asyncio.run(go(native))
        b = asyncio.run(go(fallback))
        expected = snapshot(native, EVENTS)
        assert len(expected) >= 3000  # the account's generated events
        assert a.streams["events"].records == b.streams["events"].records == len(expected)
        assert snapshot(fallback, EVENTS) == expected
        assert (
            fallback.load_state(a.account_id, "events")[""]
            == native.load_state(a.account_id, "events")[""]
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

    def load_pages(self, account_id: str, pages: Any, state: Any) -> list[int]:
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
