"""DuckDB warehouse: upserts, atomic batches, bookmarks, deletions, additive migrations."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from kbridge.warehouse import (
    SEEN_TABLE,
    Batch,
    DeleteUnseen,
    DeleteWhere,
    DestinationURLError,
    Table,
    WarehouseError,
    open_warehouse,
    table,
)
from kbridge.warehouse.duckdb import DuckDBWarehouse

pytestmark = pytest.mark.unit

T = table(
    "things", ["id", ("seen_at", "timestamp"), ("n", "bigint"), ("doc", "json"), ("ok", "boolean")]
)


@pytest.fixture
def wh() -> Iterator[DuckDBWarehouse]:
    w = DuckDBWarehouse(":memory:")
    w.migrate([T])
    yield w
    w.close()


def rows(w: DuckDBWarehouse, t: Table = T) -> list[tuple[object, ...]]:
    cols = ", ".join(f"CAST({c} AS VARCHAR)" for c in t.column_names)
    return w.query(f"SELECT {cols} FROM {t.name} ORDER BY 1, 2")  # noqa: S608


def test_upsert_replaces_by_key_and_keeps_accounts_apart(wh: DuckDBWarehouse) -> None:
    wh.commit(Batch("A").upsert(T, [("A", "1", "2025-01-01T00:00:00Z", 1, '{"k": 1}', True)]))
    wh.commit(Batch("B").upsert(T, [("B", "1", None, 7, None, None)]))
    wh.commit(Batch("A").upsert(T, [("A", "1", "2025-02-01T10:00:00+02:00", 2, '{"k": 2}', False)]))
    assert rows(wh) == [
        ("A", "1", "2025-02-01 08:00:00+00", "2", '{"k": 2}', "false"),
        ("B", "1", None, "7", None, None),
    ]


@pytest.mark.parametrize(
    "ids",
    [
        ["1", "2", ""],  # all strings: one joined parameter, empty strings kept
        ["1", "a\x1eb", "c"],  # a value holding the separator: bound as a list instead
        ["1", "\x1e", "\x1e\x1e"],
    ],
)
def test_text_columns_arrive_value_for_value_whichever_way_they_travel(
    wh: DuckDBWarehouse, ids: list[str]
) -> None:
    docs = ['{"k": "x\\u001ey"}', None, "[]"]  # JSON text, a null, an escaped separator
    wh.commit(
        Batch("A").upsert(
            T,
            [
                ("A", i, "2025-01-01T00:00:00Z", n, d, None)
                for n, (i, d) in enumerate(zip(ids, docs, strict=True))
            ],
        )
    )
    got = wh.query("SELECT id, n, CAST(doc AS VARCHAR), seen_at IS NOT NULL FROM things")
    assert sorted(got) == sorted(
        (i, n, d, True) for n, (i, d) in enumerate(zip(ids, docs, strict=True))
    )


def test_a_batch_meeting_an_existing_key_is_upserted_whole_with_its_state(
    wh: DuckDBWarehouse,
) -> None:
    # first tried as a plain insert, which the existing key "1" refuses: the retry
    # must still write every row and the bookmark exactly once
    wh.commit(Batch("A").upsert(T, [("A", "1", None, 1, None, None)]))
    for n in range(2, 12):  # past the batches that go straight to the upsert
        mixed = [("A", "1", None, n, None, None), ("A", str(n), None, n, None, None)]
        wh.commit(Batch("A").upsert(T, mixed).set_state("s", "", {"b": n}))
        assert wh.query("SELECT n FROM things WHERE id = '1'") == [(n,)]
        assert wh.load_state("A", "s") == {"": {"b": n}}
    assert wh.query("SELECT count(*), count(DISTINCT id) FROM things") == [(11, 11)]
    with pytest.raises(WarehouseError, match="refused"):  # not a key clash: still an error
        wh.commit(Batch("A").upsert(T, [("A", "99", "not a time", 1, None, None)]))
    assert wh.query("SELECT count(*) FROM things WHERE id = '99'") == [(0,)]


def test_duplicate_keys_in_one_batch_keep_the_last(wh: DuckDBWarehouse) -> None:
    wh.commit(
        Batch("A").upsert(T, [("A", "1", None, 1, None, None), ("A", "1", None, 2, None, None)])
    )
    assert [r[3] for r in rows(wh)] == ["2"]


def test_state_is_written_with_the_rows_and_cleared_by_none(wh: DuckDBWarehouse) -> None:
    batch = Batch("A").upsert(T, [("A", "1", None, 1, None, None)])
    batch.set_state("things", "", {"bookmark": "2025-01-01T00:00:00+00:00"})
    batch.set_state("things", "p2", {"done": True})
    wh.commit(batch)
    assert wh.load_state("A", "things") == {
        "": {"bookmark": "2025-01-01T00:00:00+00:00"},
        "p2": {"done": True},
    }
    assert wh.load_state("B", "things") == {}
    wh.commit(Batch("A").set_state("things", "p2", None))
    assert set(wh.load_state("A", "things")) == {""}


def test_a_failing_batch_leaves_nothing_behind(wh: DuckDBWarehouse) -> None:
    bad = Batch("A").upsert(T, [("A", "1", None, 1, None, None)])
    bad.set_state("things", "", {"bookmark": "x"})
    bad.upsert(T, [("A", "2", "not a timestamp", 1, None, None)])
    with pytest.raises(WarehouseError, match="DuckDB refused a batch"):
        wh.commit(bad)
    assert rows(wh) == []
    assert wh.load_state("A", "things") == {}


def test_delete_where_and_not_equals_treats_null_as_different(wh: DuckDBWarehouse) -> None:
    wh.commit(
        Batch("A").upsert(
            T,
            [
                ("A", "1", None, 1, None, None),
                ("A", "2", None, 2, None, None),
                ("A", "3", None, None, None, None),
            ],
        )
    )
    wh.commit(Batch("B").upsert(T, [("B", "1", None, 9, None, None)]))
    wh.commit(Batch("A").delete(DeleteWhere(T, not_equals={"n": 1})))
    assert [(r[0], r[1]) for r in rows(wh)] == [("A", "1"), ("B", "1")]


def test_delete_unseen_removes_ids_a_scan_did_not_report(wh: DuckDBWarehouse) -> None:
    wh.commit(Batch("A").upsert(T, [("A", i, None, None, None, None) for i in "123"]))
    wh.commit(
        Batch("A").upsert(SEEN_TABLE, [("A", "things", "run1", "1"), ("A", "things", "run1", "3")])
    )
    wh.commit(Batch("A").delete(DeleteUnseen(T, "id", "things", "run1")))
    assert [r[1] for r in rows(wh)] == ["1", "3"]


def test_migrate_adds_new_columns_and_keeps_data(wh: DuckDBWarehouse) -> None:
    wh.commit(Batch("A").upsert(T, [("A", "1", None, 1, None, None)]))
    wider = table("things", [*((c.name, c.type) for c in T.columns[1:]), ("extra", "json")])
    wh.migrate([wider])
    wh.commit(Batch("A").upsert(wider, [("A", "2", None, 2, None, None, '{"new": true}')]))
    assert wh.query("SELECT id, CAST(extra AS VARCHAR) FROM things ORDER BY id") == [
        ("1", None),
        ("2", '{"new": true}'),
    ]


def test_migrate_drops_a_retired_column_and_keeps_the_rest(wh: DuckDBWarehouse) -> None:
    wh.commit(Batch("A").upsert(T, [("A", "1", None, 1, '{"a": 1}', True)]))
    narrower = table(
        "things", [(c.name, c.type) for c in T.columns[1:] if c.name != "doc"], retired=["doc"]
    )
    wh.migrate([narrower])
    wh.migrate([narrower])  # once gone, nothing to do
    wh.commit(Batch("A").upsert(narrower, [("A", "2", None, 2, False)]))
    assert rows(wh, narrower) == [("A", "1", None, "1", "true"), ("A", "2", None, "2", "false")]
    assert "doc" not in {
        r[0]
        for r in wh.query(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'things'"
        )
    }


def test_a_retired_column_cannot_also_be_a_column() -> None:
    with pytest.raises(ValueError, match="retired"):
        table("things", ["id", "doc"], retired=["doc"])


def test_a_file_database_persists_across_connections(tmp_path: object) -> None:
    path = f"{tmp_path}/w.duckdb"
    first = open_warehouse(f"duckdb:///{path}")
    first.migrate([T])
    first.commit(
        Batch("A").upsert(T, [("A", "1", None, 1, None, None)]).set_state("s", "", {"b": 1})
    )
    first.close()
    again = open_warehouse(path)
    assert again.query("SELECT count(*) FROM things") == [(1,)]
    assert again.load_state("A", "s") == {"": {"b": 1}}
    again.close()


@pytest.mark.parametrize("url", ["mysql://x", "duckdb://", "kbridge.sqlite"])
def test_unknown_destinations_are_refused_with_the_expected_forms(url: str) -> None:
    with pytest.raises(DestinationURLError, match="duckdb"):
        open_warehouse(url)


def test_tables_must_start_with_account_id_and_key_on_it() -> None:
    with pytest.raises(ValueError, match="account_id"):
        Table("t", (T.columns[1],), ("id",))


def test_purging_a_profile_removes_it_everywhere_it_is_named() -> None:
    from kbridge.warehouse import purge_profiles

    w = DuckDBWarehouse(":memory:")
    profiles = table("profiles", ["id", "email"])
    events = table("events", ["id", "profile_id"])
    w.migrate([profiles, events])  # memberships never synced: skipped, not an error
    batch = Batch("A").upsert(profiles, [("A", "p1", "a@x"), ("A", "p2", "b@x")])
    batch.upsert(events, [("A", "e1", "p1"), ("A", "e2", "p2"), ("A", "e3", "p1")])
    w.commit(batch)
    w.commit(Batch("B").upsert(profiles, [("B", "p1", "other account")]))
    assert purge_profiles(w, "A", ["p1"]) == 1
    assert w.query("SELECT account_id, id FROM profiles ORDER BY 1, 2") == [
        ("A", "p2"),
        ("B", "p1"),
    ]
    assert w.query("SELECT id FROM events") == [("e2",)]
    w.close()


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("duckdb:///kbridge.duckdb", "kbridge.duckdb"),  # relative, as the docs write it
        ("duckdb:///./data/kb.duckdb", "./data/kb.duckdb"),
        ("duckdb:////srv/kb.duckdb", "/srv/kb.duckdb"),  # absolute: four slashes
        ("duckdb:///:memory:", ":memory:"),
        ("shop.duckdb", "shop.duckdb"),
        ("duckdb:///kb.duckdb?threads=2", "kb.duckdb"),
        ("postgresql://kb@localhost/kb", None),
    ],
)
def test_duckdb_urls_read_like_sqlalchemys_sqlite_urls(url: str, path: str | None) -> None:
    from kbridge.warehouse import duckdb_path

    assert duckdb_path(url) == path


def test_a_relative_duckdb_url_lands_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    wh = open_warehouse("duckdb:///here.duckdb")
    wh.close()
    assert (tmp_path / "here.duckdb").exists()


def _settings(w: object) -> tuple[str, int]:
    assert isinstance(w, DuckDBWarehouse)
    ((limit, threads),) = w.query(
        "SELECT current_setting('memory_limit'), current_setting('threads')"
    )
    return str(limit), int(threads)


def test_memory_limit_and_threads_are_set_on_the_connection(tmp_path: object) -> None:
    w = open_warehouse(f"duckdb:///{tmp_path}/s.duckdb", memory_limit="100MB", threads=1)
    try:
        limit, threads = _settings(w)
    finally:
        w.close()
    assert limit.startswith("95.3 MiB")
    assert threads == 1


def test_the_urls_settings_win_over_the_callers_defaults(tmp_path: object) -> None:
    url = f"duckdb:///{tmp_path}/s.duckdb?memory_limit=200MB&threads=2"
    w = open_warehouse(url, memory_limit="100MB", threads=1)
    try:
        limit, threads = _settings(w)
    finally:
        w.close()
    assert limit.startswith("190.7 MiB")
    assert threads == 2


def test_a_default_memory_limit_never_caps_an_in_memory_database() -> None:
    untouched = DuckDBWarehouse(":memory:")
    w = open_warehouse("duckdb:///:memory:", memory_limit="100MB")
    try:
        assert _settings(w)[0] == _settings(untouched)[0]
    finally:
        w.close()
        untouched.close()


@pytest.mark.parametrize(
    ("query", "message"),
    [("?cache=1", "unknown setting"), ("?threads=many", "whole number")],
)
def test_bad_duckdb_url_settings_are_one_clear_error(query: str, message: str) -> None:
    with pytest.raises(DestinationURLError, match=message):
        open_warehouse(f"duckdb:///:memory:{query}")


def test_a_new_database_file_and_its_wal_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask: files are created 0644 unless we say otherwise
    try:
        path = tmp_path / "w.duckdb"
        w = DuckDBWarehouse(str(path))
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        w.migrate([T])
        w.commit(Batch("A").upsert(T, [("A", "1", None, 1, None, None)]))
        wal = tmp_path / "w.duckdb.wal"
        assert wal.exists()  # the row is in the WAL until a checkpoint
        assert stat.S_IMODE(wal.stat().st_mode) == 0o600
        w.close()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        # no temporary file left; the lock file that guards compaction is empty and private
        assert sorted(p.name for p in tmp_path.iterdir()) == ["w.duckdb", "w.duckdb.kbridge-lock"]
        lock = tmp_path / "w.duckdb.kbridge-lock"
        assert lock.stat().st_size == 0
        assert stat.S_IMODE(lock.stat().st_mode) == 0o600
    finally:
        os.umask(old)
