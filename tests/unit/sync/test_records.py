"""State records: each reads and writes the JSON the engine has always stored."""

from __future__ import annotations

from typing import Any

import pytest

from kbridge.sync.records import (
    PLAN,
    Bookmark,
    ChildrenRun,
    ParentRead,
    SlicePlan,
    StreamState,
    WindowMark,
    read_key,
)
from kbridge.warehouse import Batch, StateUpdate
from kbridge.warehouse.duckdb import DuckDBWarehouse

pytestmark = pytest.mark.unit

TS = "2026-03-01T12:00:00+00:00"

#: rows as the engine stored them before the records existed, one of each kind
OLD_ROWS: dict[str, dict[str, Any]] = {
    "": {"bookmark": TS},
    PLAN: {"lower": "2025-01-01T00:00:00+00:00"},
    "slice:2025-01-01T00:00:00+00:00": {"bookmark": TS, "done": True},
    "slice:2025-01-31T00:00:00+00:00": {"bookmark": None, "done": False},
    "read:L1": {"at": TS},
}


@pytest.mark.parametrize(
    "record",
    [
        Bookmark(TS),
        Bookmark(None),
        SlicePlan(TS),
        WindowMark(TS, done=True),
        WindowMark(None, done=False),
        ParentRead(TS),
        ChildrenRun("run1", TS),
    ],
)
def test_every_record_round_trips_through_its_json(record: Any) -> None:
    assert type(record).from_json(record.to_json()) == record


def test_records_write_the_keys_earlier_releases_read() -> None:
    assert Bookmark(TS).to_json() == {"bookmark": TS}
    assert SlicePlan(TS).to_json() == {"lower": TS}
    assert WindowMark(TS, done=True).to_json() == {"bookmark": TS, "done": True}
    assert ParentRead(TS).to_json() == {"at": TS}
    assert ChildrenRun("r", TS).to_json() == {"last_run": "r", "completed_at": TS}
    assert read_key("L1") == "read:L1"


def test_rows_stored_by_an_earlier_release_read_as_records() -> None:
    wh = DuckDBWarehouse(":memory:")
    batch = Batch("acct")
    batch.state.extend(StateUpdate("events", k, v) for k, v in OLD_ROWS.items())
    wh.commit(batch)

    state = StreamState("events", wh.load_state("acct", "events"))

    assert state.bookmark() == Bookmark(TS)
    assert state.plan() == SlicePlan("2025-01-01T00:00:00+00:00")
    assert state.window("slice:2025-01-01T00:00:00+00:00") == WindowMark(TS, done=True)
    assert state.window("slice:2025-01-31T00:00:00+00:00") == WindowMark(None, done=False)
    assert sorted(state.windows()) == [
        "slice:2025-01-01T00:00:00+00:00",
        "slice:2025-01-31T00:00:00+00:00",
    ]
    assert state.parents_read() == {"L1": ParentRead(TS)}


def test_missing_or_empty_rows_are_no_record() -> None:
    state = StreamState("s", {"": {"bookmark": ""}, PLAN: {"lower": ""}})
    assert state.bookmark() == Bookmark(None)
    assert state.bookmark("other") is None
    assert state.plan() is None
    assert state.window("slice:x") is None
    assert state.children_run() is None


def test_an_update_stores_a_record_and_clears_with_none() -> None:
    wh = DuckDBWarehouse(":memory:")
    state = StreamState("events", {})
    wh.commit(Batch("acct", state=[state.update(PLAN, SlicePlan(TS))]))
    assert wh.load_state("acct", "events") == {PLAN: {"lower": TS}}
    wh.commit(Batch("acct", state=[state.update(PLAN, None)]))
    assert wh.load_state("acct", "events") == {}
