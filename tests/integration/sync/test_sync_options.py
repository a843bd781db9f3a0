"""The engine's seams end to end: state rows stored by earlier releases resume, a run
configured by one SyncOptions, failures kept as exceptions, the collector tuning opt-in."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from kbridge import sync
from kbridge.emulator.server import EmulatorServer
from kbridge.sync.engine import GC_GEN0_THRESHOLD
from kbridge.sync.state import format_ts, parse_ts
from kbridge.sync.streams import get_stream
from kbridge.sync.windows import plan_windows
from kbridge.warehouse import Batch, StateUpdate
from kbridge.warehouse.duckdb import DuckDBWarehouse

from .conftest import FailAfter, api_all, client_for

pytestmark = pytest.mark.integration


def _run(server: EmulatorServer, options: sync.SyncOptions) -> sync.SyncResult:
    async def go() -> sync.SyncResult:
        async with client_for(server) as client:
            return await sync.run(client, options)

    return asyncio.run(go())


def _account(http: httpx.Client) -> str:
    return str(http.get("/api/accounts").json()["data"][0]["id"])


def _old_rows(wh: DuckDBWarehouse, account: str, stream: str, rows: dict[str, Any]) -> None:
    """State rows exactly as the engine wrote them before its typed records (plain JSON)."""
    batch = Batch(account)
    batch.state.extend(StateUpdate(stream, k, v) for k, v in rows.items())
    wh.commit(batch)


def test_an_old_format_bookmark_resumes_from_where_it_stood(
    server: EmulatorServer, http: httpx.Client
) -> None:
    profiles = api_all(http, "/api/profiles")
    stamps = sorted(parse_ts(p["attributes"]["updated"]) for p in profiles)
    middle = format_ts(stamps[len(stamps) // 2])
    newer = {p["id"] for p in profiles if parse_ts(p["attributes"]["updated"]) >= parse_ts(middle)}
    assert 0 < len(newer) < len(profiles)
    wh = DuckDBWarehouse(":memory:")
    wh.migrate(get_stream("profiles").tables)
    account = _account(http)
    _old_rows(wh, account, "profiles", {"": {"bookmark": middle}})

    options = sync.SyncOptions(wh, streams=["profiles"], lookback=timedelta(0))
    result = _run(server, options)

    assert result.streams["profiles"].records == len(newer)
    assert {r[0] for r in wh.query("SELECT id FROM profiles")} == newer


def test_an_old_format_slice_plan_resumes_its_windows(
    server: EmulatorServer, http: httpx.Client
) -> None:
    events = api_all(http, "/api/events", {"sort": "datetime"})
    lower = parse_ts(events[0]["attributes"]["datetime"]).replace(microsecond=0)
    stream = get_stream("events")
    assert stream.slice_days is not None
    first = plan_windows(lower, lower + timedelta(days=10_000), stream.slice_days)[0]
    later = {e["id"] for e in events if parse_ts(e["attributes"]["datetime"]) >= first.end}
    assert 0 < len(later) < len(events)  # the account spans more than the first window
    wh = DuckDBWarehouse(":memory:")
    wh.migrate(stream.tables)
    account = _account(http)
    # an interrupted run: planned from ``lower``, its first window done
    old = {"plan": {"lower": format_ts(lower)}, first.name: {"bookmark": None, "done": True}}
    _old_rows(wh, account, "events", old)

    _run(server, sync.SyncOptions(wh, streams=["events"]))

    # the done window is not read again; every later one is
    assert {r[0] for r in wh.query("SELECT id FROM events")} == later
    left = wh.load_state(account, "events")
    assert set(left) == {""}  # plan and windows cleared as the stream's bookmark moved
    assert left[""]["bookmark"] is not None


def test_a_failed_stream_keeps_its_exception(server: EmulatorServer) -> None:
    wh = FailAfter(DuckDBWarehouse(":memory:"), 0)
    options = sync.SyncOptions(wh, streams=["lists"])  # type: ignore[arg-type]
    with pytest.raises(sync.SyncError) as caught:
        _run(server, options)
    failed = caught.value.result.streams["lists"]
    assert isinstance(failed.exception, RuntimeError)
    assert failed.error == "RuntimeError: injected crash before commit"
    assert failed.to_dict()["error"] == failed.error
    assert not caught.value.result.ok


@pytest.fixture
def default_threshold() -> Iterator[int]:
    saved = gc.get_threshold()
    gc.set_threshold(700, *saved[1:])
    try:
        yield 700
    finally:
        gc.set_threshold(*saved)


@pytest.mark.parametrize("opted_in", [False, True])
def test_the_collector_tuning_is_opt_in(
    server: EmulatorServer, default_threshold: int, opted_in: bool
) -> None:
    during: list[int] = []
    callbacks = sync.Callbacks(on_progress=lambda _stream, _n: during.append(gc.get_threshold()[0]))
    wh = DuckDBWarehouse(":memory:")
    options = sync.SyncOptions(
        wh, streams=["lists"], callbacks=callbacks, fewer_collections=opted_in
    )

    _run(server, options)

    assert during
    assert set(during) == {GC_GEN0_THRESHOLD if opted_in else default_threshold}
    assert gc.get_threshold()[0] == default_threshold  # restored as the run ended


def test_options_and_keywords_are_one_form_or_the_other(
    server: EmulatorServer, http: httpx.Client
) -> None:
    wh = DuckDBWarehouse(":memory:")

    async def both() -> None:
        async with client_for(server) as client:
            await sync.run(client, sync.SyncOptions(wh), streams=["lists"])

    with pytest.raises(TypeError, match="not both"):
        asyncio.run(both())

    async def keywords() -> sync.SyncResult:
        async with client_for(server) as client:
            return await sync.run(client, wh, streams=["lists"], full_refresh=True)

    lists = api_all(http, "/api/lists")
    assert lists
    assert asyncio.run(keywords()).streams["lists"].records == len(lists)
