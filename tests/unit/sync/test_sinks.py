"""Page sinks: which one a stream gets, and how consecutive pages merge into commits."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from kbridge.api import AsyncClient
from kbridge.core import ManualClock
from kbridge.sync.context import Context, Writer
from kbridge.sync.options import Callbacks, SyncOptions
from kbridge.sync.results import StreamResult
from kbridge.sync.sinks import FLUSH_SECONDS, JsonSink, Pending, RowSink, sink_for
from kbridge.sync.streams import Stream, get_stream
from kbridge.warehouse import Batch, Warehouse
from kbridge.warehouse.duckdb import DuckDBWarehouse

pytestmark = pytest.mark.unit


class RowsOnly:
    """A DuckDB warehouse seen without its page loader (as PostgreSQL is today)."""

    def __init__(self, inner: DuckDBWarehouse) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        if name in ("load_pages", "page_info"):
            raise AttributeError(name)
        return getattr(self.inner, name)


@pytest.fixture
def wh() -> Iterator[DuckDBWarehouse]:
    w = DuckDBWarehouse(":memory:")
    yield w
    w.close()


def _ctx(wh: Any, clock: ManualClock, heard: list[tuple[str, int]] | None = None) -> Context:
    client = AsyncClient("pk_" + "0" * 34, base_url="http://127.0.0.1:9", clock=clock)
    callbacks = Callbacks(on_progress=None if heard is None else lambda s, n: heard.append((s, n)))
    options = SyncOptions(wh, callbacks=callbacks)
    return Context(client, Writer(wh), "acct", options, clock)


def test_a_stream_read_in_database_gets_the_json_sink_where_the_warehouse_can(
    wh: DuckDBWarehouse,
) -> None:
    clock = ManualClock()
    events, lists = get_stream("events"), get_stream("lists")
    assert events.from_json is not None
    assert lists.from_json is None

    assert isinstance(sink_for(_ctx(wh, clock), events, StreamResult("events")), JsonSink)
    assert isinstance(sink_for(_ctx(wh, clock), lists, StreamResult("lists")), RowSink)
    rows_only: Warehouse = RowsOnly(wh)  # type: ignore[assignment]
    chosen = sink_for(_ctx(rows_only, clock), events, StreamResult("events"))
    assert isinstance(chosen, RowSink)


def _page(stream: Stream, first: int, n: int, bookmark: str) -> Batch:
    table = stream.table
    blanks = [None] * (len(table.column_names) - 2)
    rows = [("acct", f"L{i}", *blanks) for i in range(first, first + n)]
    return Batch("acct").upsert(table, rows).set_state(stream.name, "", {"bookmark": bookmark})


def _count(wh: DuckDBWarehouse, stream: Stream) -> int:
    return int(wh.query(f'SELECT count(*) FROM "{stream.table.name}"')[0][0])  # noqa: S608


def test_pages_merge_until_rows_time_or_the_last_page(wh: DuckDBWarehouse) -> None:
    stream = dataclasses.replace(get_stream("lists"), flush_rows=25)
    wh.migrate(stream.tables)
    clock = ManualClock()
    heard: list[tuple[str, int]] = []
    result = StreamResult(stream.name)
    pending = Pending(_ctx(wh, clock, heard), stream, result)

    def add(first: int, n: int, bookmark: str, *, last: bool = False) -> None:
        asyncio.run(pending.add(_page(stream, first, n, bookmark), n, last=last))

    def bookmark() -> Any:
        return wh.load_state("acct", stream.name)[""]["bookmark"]

    add(0, 10, "b1")  # the first page at once: an early kill keeps it
    assert (_count(wh, stream), bookmark()) == (10, "b1")
    add(10, 10, "b2")  # waits: 10 rows held, under 25
    assert (_count(wh, stream), bookmark()) == (10, "b1")
    add(20, 10, "b3")  # 20 held
    assert _count(wh, stream) == 10
    add(30, 10, "b4")  # 30 held: over 25, flushed with the last page's bookmark
    assert (_count(wh, stream), bookmark()) == (40, "b4")
    add(40, 1, "b5")
    clock.advance(FLUSH_SECONDS)
    add(41, 1, "b6")  # the first held page waited long enough
    assert (_count(wh, stream), bookmark()) == (42, "b6")
    add(42, 1, "b7", last=True)
    assert (_count(wh, stream), bookmark()) == (43, "b7")

    assert (result.records, result.pages) == (43, 7)
    assert heard == [("lists", 10), ("lists", 30), ("lists", 2), ("lists", 1)]
