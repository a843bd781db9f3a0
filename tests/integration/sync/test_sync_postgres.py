"""PostgreSQL: the same sync produces the same rows as DuckDB; batches are atomic there too.

Uses the ``postgres_url`` fixture (a throwaway server started by the test
session from Debian's postgresql package; a missing package is an error)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kbridge import sync
from kbridge.emulator.server import EmulatorServer
from kbridge.warehouse import Batch, WarehouseError, open_warehouse, table
from kbridge.warehouse.duckdb import DuckDBWarehouse
from kbridge.warehouse.postgres import PostgresWarehouse

from .conftest import SERVED, FailAfter, client_for, snapshot

pytestmark = pytest.mark.integration


def run(server: EmulatorServer, wh: Any, **kwargs: Any) -> sync.SyncResult:
    async def go() -> sync.SyncResult:
        async with client_for(server) as client:
            return await sync.run(client, wh, **kwargs)

    return asyncio.run(go())


def test_postgres_and_duckdb_hold_the_same_rows(server: EmulatorServer, postgres_url: str) -> None:
    duck = DuckDBWarehouse(":memory:")
    run(server, duck, streams=SERVED)
    pg = open_warehouse(postgres_url)
    assert isinstance(pg, PostgresWarehouse)
    # a crash midway first: the resumed PostgreSQL sync must still match DuckDB exactly
    with pytest.raises(sync.SyncError):
        run(server, FailAfter(pg, 9), streams=SERVED)
    run(server, pg, streams=SERVED)
    for name in SERVED:
        for t in sync.get_stream(name).tables:
            expected = snapshot(duck, t)
            assert expected, f"{t.name} is empty: the comparison would prove nothing"
            assert snapshot(pg, t) == expected, t.name
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


def test_an_unreachable_server_is_one_clear_error_without_the_password() -> None:
    from kbridge.warehouse import DestinationUnavailableError

    with pytest.raises(DestinationUnavailableError, match="cannot connect") as info:
        open_warehouse("postgresql://kb:s3cret@127.0.0.1:1/none?connect_timeout=2")
    assert "s3cret" not in str(info.value)
