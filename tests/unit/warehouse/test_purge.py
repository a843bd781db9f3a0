"""Purging people from a DuckDB file: the rows go, and so do their bytes."""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from kbridge.warehouse import (
    Batch,
    DestinationUnavailableError,
    compact_warehouse,
    purge_profiles,
    table,
)
from kbridge.warehouse.duckdb import DuckDBWarehouse

pytestmark = pytest.mark.unit

PROFILES = table("profiles", ["id", "email", ("attributes", "json")])
EVENTS = table("events", ["id", "profile_id", ("properties", "json")])


def _stored(path: Path) -> bytes:
    wal = path.with_name(path.name + ".wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def test_a_purge_leaves_no_bytes_of_the_people_in_the_file_and_keeps_the_rest(
    tmp_path: Path,
) -> None:
    path = tmp_path / "kb.duckdb"
    w = DuckDBWarehouse(str(path))
    w.migrate([PROFILES, EVENTS])
    people = [(f"p{i}", f"person{i}@purged.example") for i in range(300)]
    batch = Batch("A").upsert(
        PROFILES, [("A", pid, mail, f'{{"email": "{mail}"}}') for pid, mail in people]
    )
    batch.upsert(EVENTS, [("A", f"e{pid}", pid, f'{{"to": "{mail}"}}') for pid, mail in people])
    batch.set_state("profiles", "", {"cursor": "c1"})
    w.commit(batch)
    w.query("CHECKPOINT")
    path.chmod(0o600)
    assert b"person7@purged.example" in _stored(path)
    assert purge_profiles(w, "A", ["p7", "p8"]) == 2
    w.query("CHECKPOINT")
    stored = _stored(path)
    assert b"person7@purged.example" not in stored
    assert b"person8@purged.example" not in stored
    assert b"person9@purged.example" in stored
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not path.with_name("kb.duckdb.compact").exists()
    # the same connection goes on: rows, bookmarks and keys survived the rewrite
    assert w.query("SELECT count(*) FROM profiles") == [(298,)]
    assert w.query("SELECT count(*) FROM events") == [(298,)]
    assert w.load_state("A", "profiles") == {"": {"cursor": "c1"}}
    w.commit(Batch("A").upsert(PROFILES, [("A", "p9", "new@purged.example", "{}")]))
    assert w.query("SELECT email FROM profiles WHERE id = 'p9'") == [("new@purged.example",)]
    w.close()
    again = DuckDBWarehouse(str(path))
    assert again.query("SELECT count(*) FROM profiles") == [(298,)]
    again.close()


def test_compacting_without_a_file_is_harmless() -> None:
    w = DuckDBWarehouse(":memory:")
    w.migrate([PROFILES])
    w.commit(Batch("A").upsert(PROFILES, [("A", "p1", "a@x.io", "{}")]))
    assert purge_profiles(w, "A", ["p1"]) == 1
    assert compact_warehouse(w) is True
    assert w.query("SELECT count(*) FROM profiles") == [(0,)]
    w.close()


def test_a_process_opening_the_file_while_it_is_swapped_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Compaction detaches the file (DuckDB's lock goes with it) to rename the rewritten
    copy over it; a sync opening the file in that window wrote into the old inode, and
    its rows were lost. kbridge's own lock is held across the swap."""
    path = tmp_path / "kb.duckdb"
    w = DuckDBWarehouse(str(path))
    w.migrate([PROFILES])
    w.commit(Batch("A").upsert(PROFILES, [("A", "p1", "a@x.example", "{}")]))
    opener = (
        "from kbridge.warehouse.duckdb import DuckDBWarehouse\n"
        f"DuckDBWarehouse({str(path)!r}).close()"
    )
    seen: list[subprocess.CompletedProcess[str]] = []
    real_copymode = shutil.copymode

    def copymode_with_an_intruder(src: str, dst: str) -> None:
        # the old file is detached here, the new one not yet renamed into place
        seen.append(
            subprocess.run(
                [sys.executable, "-c", opener], capture_output=True, text=True, check=False
            )
        )
        real_copymode(src, dst)

    monkeypatch.setattr(shutil, "copymode", copymode_with_an_intruder)
    w.compact()
    assert len(seen) == 1
    assert seen[0].returncode != 0
    assert "another kbridge process has it open" in seen[0].stderr
    assert w.query("SELECT count(*) FROM profiles") == [(1,)]
    w.close()
    # closed, the file is free again
    again = DuckDBWarehouse(str(path))
    assert again.query("SELECT count(*) FROM profiles") == [(1,)]
    again.close()


def test_a_missing_directory_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    with pytest.raises(DestinationUnavailableError, match="cannot open DuckDB file"):
        DuckDBWarehouse(str(tmp_path / "no" / "such" / "kb.duckdb"))
