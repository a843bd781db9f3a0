"""PostgreSQL: the same sync produces the same rows as DuckDB; batches are atomic there too.

Uses the ``postgres_url`` fixture (a throwaway server started by the test
session from Debian's postgresql package; a missing package is an error)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from kbridge import sync
from kbridge.core import ManualClock
from kbridge.emulator.server import EmulatorServer
from kbridge.testing.plugin import http_client_for
from kbridge.warehouse import Batch, WarehouseError, open_warehouse, table
from kbridge.warehouse.duckdb import DuckDBWarehouse
from kbridge.warehouse.postgres import PostgresWarehouse

from .conftest import SERVED, SMALL, FailAfter, client_for, snapshot

pytestmark = pytest.mark.integration


def _ok(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def _flow_emails(http: httpx.Client) -> None:
    """A live flow that emails every buyer, and three orders: generated accounts' flows are
    drafts, so without this the flow series report has no row to compare."""
    metrics = _ok(http.get("/api/metrics"), 200)["data"]
    placed = next(m["id"] for m in metrics if m["attributes"]["name"] == "Placed Order")
    definition = {
        "triggers": [{"type": "metric", "id": placed}],
        "entry_action_id": "mail",
        "actions": [{"temporary_id": "mail", "type": "send-email",
                     "data": {"message": {"subject_line": "Thanks"}}}],
    }  # fmt: skip
    body = {"data": {"type": "flow", "attributes": {"name": "Thanks", "definition": definition}}}
    fid = _ok(http.post("/api/flows", json=body), 201)["data"]["id"]
    live = {"data": {"type": "flow", "id": fid, "attributes": {"status": "live"}}}
    _ok(http.patch(f"/api/flows/{fid}", json=live), 200)
    for email in ("pg1@example.com", "pg2@example.com", "pg1@example.com"):
        order = {"data": {"type": "event", "attributes": {
            "properties": {"OrderId": email}, "value": 30,
            "metric": {"data": {"type": "metric", "attributes": {"name": "Placed Order"}}},
            "profile": {"data": {"type": "profile", "attributes": {"email": email}}},
        }}}  # fmt: skip
        _ok(http.post("/api/events", json=order), 202)


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    """The small account with a flow that sent email two simulated days ago, so the daily
    flow series (complete days only) holds it."""
    with EmulatorServer(SMALL) as s:
        with http_client_for(s) as http:
            _flow_emails(http)
            _ok(
                httpx.post(f"{s.base_url}/_emulator/clock", json={"advance_seconds": 2 * 86400}),
                200,
            )
        yield s


def _emulator_now(server: EmulatorServer) -> datetime:
    now = _ok(httpx.get(f"{server.base_url}/_emulator/clock"), 200)["now"]
    return datetime.fromisoformat(now)


def run(server: EmulatorServer, wh: Any, **kwargs: Any) -> sync.SyncResult:
    # the sync's "today" is the emulator's, whose clock moved on
    clock = ManualClock(_emulator_now(server))

    async def go() -> sync.SyncResult:
        async with client_for(server) as client:
            return await sync.run(client, wh, clock=clock, **kwargs)

    return asyncio.run(go())


def test_postgres_and_duckdb_hold_the_same_rows(server: EmulatorServer, postgres_url: str) -> None:
    duck = DuckDBWarehouse(":memory:")
    pg = open_warehouse(postgres_url)
    try:  # closed even when an assertion fails: a leaked connection fails a later test
        assert isinstance(pg, PostgresWarehouse)
        run(server, duck, streams=SERVED)
        # a crash midway first: the resumed PostgreSQL sync must still match DuckDB exactly
        with pytest.raises(sync.SyncError):
            run(server, FailAfter(pg, 9), streams=SERVED)
        run(server, pg, streams=SERVED)
        for name in SERVED:
            for t in sync.get_stream(name).tables:
                expected = snapshot(duck, t)
                assert expected, f"{t.name} is empty: the comparison would prove nothing"
                assert snapshot(pg, t) == expected, t.name
    finally:
        pg.close()
        duck.close()


def test_a_failing_postgres_batch_leaves_nothing_behind(postgres_url: str) -> None:
    t = table("things", ["id", ("seen_at", "timestamp"), ("doc", "json")])
    wh = open_warehouse(postgres_url)
    wh.migrate([t])
    wh.commit(Batch("A").upsert(t, [("A", "1", "2025-01-01T00:00:00Z", '{"a": 1}')]))
    bad = Batch("A").upsert(t, [("A", "1", "2025-02-01T00:00:00Z", '{"a": 2}')])
    bad.set_state("things", "", {"bookmark": "x"})
    bad.upsert(t, [("A", "2", "not a time", None)])
    with pytest.raises(WarehouseError, match="PostgreSQL refused a batch"):
        wh.commit(bad)
    assert wh.query("SELECT id, seen_at::text, doc->>'a' FROM things") == [
        ("1", "2025-01-01 00:00:00+00", "1")
    ]
    assert wh.load_state("A", "things") == {}
    # the connection is usable after the failure
    wh.commit(Batch("A").upsert(t, [("A", "1", None, None), ("A", "1", None, '{"a": 3}')]))
    assert wh.query("SELECT doc->>'a' FROM things WHERE id = ?", ["1"]) == [("3",)]
    wh.close()


def test_migrate_drops_a_retired_column_and_keeps_the_rest(postgres_url: str) -> None:
    old = table("retiring", ["id", ("doc", "json"), "name"])
    new = table("retiring", ["id", "name"], retired=["doc"])
    wh = open_warehouse(postgres_url)
    try:
        wh.migrate([old])
        wh.commit(Batch("A").upsert(old, [("A", "1", '{"a": 1}', "one")]))
        wh.migrate([new])
        wh.migrate([new])  # once gone, nothing to do
        wh.commit(Batch("A").upsert(new, [("A", "2", "two")]))
        assert wh.query("SELECT id, name FROM retiring ORDER BY id") == [("1", "one"), ("2", "two")]
        columns = wh.query(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'retiring'"
        )
        assert {c for (c,) in columns} == {"account_id", "id", "name"}
    finally:
        wh.close()


def test_an_unreachable_server_is_one_clear_error_without_the_password() -> None:
    from kbridge.warehouse import DestinationUnavailableError

    with pytest.raises(DestinationUnavailableError, match="cannot connect") as info:
        open_warehouse("postgresql://kb:s3cret@127.0.0.1:1/none?connect_timeout=2")
    assert "s3cret" not in str(info.value)
