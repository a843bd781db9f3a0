"""The DuckDB path's state: appended to ``push_log`` (no key index), one narrow line per
identity, and an older warehouse's state (``push_state``, or the log's wider layout before
2026-12-07) adopted rather than resent."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kbridge.api import AsyncClient, ClientConfig, LimiterConfig
from kbridge.core import ManualClock
from kbridge.emulator import EmulatorServer
from kbridge.push import JobLimits, push_profiles, read_source
from kbridge.push._sqlpath import _payload_sql
from kbridge.warehouse import Warehouse, open_warehouse

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


@pytest.fixture
def server(emulator_factory: Callable[..., EmulatorServer]) -> EmulatorServer:
    return emulator_factory(profiles=0, events=0)


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[Warehouse]:
    wh = open_warehouse(f"duckdb:///{tmp_path}/wh.duckdb")
    yield wh
    wh.close()


async def push(
    server: EmulatorServer, wh: Warehouse, n: int, *, changed: int = -1, **kw: object
) -> dict[str, int]:
    wh.query(
        "CREATE OR REPLACE TABLE scores AS SELECT 'p' || i || '@example.com' AS email, "
        "CASE WHEN i = ? THEN 9.0 ELSE i / 100 END AS churn_risk FROM range(?) t(i)",
        [changed, n],
    )
    config = ClientConfig(limiter=LimiterConfig(limit_factor=None))
    async with AsyncClient(server.api_key, base_url=server.base_url, config=config) as client:
        summary = await push_profiles(
            client,
            read_source(wh, table="scores"),
            warehouse=wh,
            properties=["churn_risk"],
            clock=ManualClock(),
            **kw,  # type: ignore[arg-type]
        )
    return summary.as_dict()


def count(wh: Warehouse, sql: str) -> int:
    return int(wh.query(sql)[0][0])


async def test_state_is_appended_to_a_log_without_a_key_one_line_per_identity(
    server: EmulatorServer, warehouse: Warehouse
) -> None:
    first = await push(server, warehouse, 50, limits=JobLimits(max_rows=20))
    assert (first["sent"], first["jobs"]) == (50, 3)
    assert count(warehouse, "SELECT count(*) FROM push_state") == 0
    assert count(warehouse, "SELECT count(DISTINCT key) FROM push_log") == 50
    # two numbers a line: the job, destination and time are the batch's
    assert [r[0] for r in warehouse.query("DESCRIBE push_log")] == ["batch", "key", "hash"]
    # each line under its job's batch: the push_jobs row, nothing written per job besides
    batches = (
        "SELECT count(DISTINCT batch) FROM push_log "
        "WHERE batch IN (SELECT hash(account_id, job_id) FROM push_jobs)"
    )
    assert count(warehouse, batches) == 3
    keys = (
        "SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'push_log' "
        "AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')"
    )
    assert count(warehouse, keys) == 0
    # a changed row replaces its line: still one line per identity
    again = await push(server, warehouse, 50, changed=3, limits=JobLimits(max_rows=20))
    assert (again["sent"], again["unchanged"]) == (1, 49)
    assert count(warehouse, "SELECT count(*) FROM push_log") == 50
    full = await push(server, warehouse, 50, full=True, limits=JobLimits(max_rows=20))
    assert full["sent"] == 50
    assert count(warehouse, "SELECT count(*) FROM push_log") == 50


def old_state(wh: Warehouse, n: int, account: str) -> str:
    """SELECT of the lines a DuckDB push wrote before 2026-12-07 for ``n`` rows of
    ``push``'s table: each row's hash taken over its payload's text."""
    wh.query(
        "CREATE OR REPLACE TABLE scores AS SELECT 'p' || i || '@example.com' AS email, "
        "i / 100 AS churn_risk FROM range(?) t(i)",
        [n],
    )
    ident, payload = _payload_sql([], ["churn_risk"], "email")
    return (
        f"SELECT '{account}' AS account_id, 'profiles:email:-' AS destination, "  # noqa: S608
        f"{ident} AS identity, CAST(hash({payload}) >> 1 AS BIGINT) AS hash, "
        "'job-' || (rowid // 20) AS job_id, TIMESTAMPTZ '2026-12-01 10:00:00+00' AS pushed_at "
        "FROM scores"
    )


def account_of(server: EmulatorServer) -> str:
    return str(server.state.backend.account_id)


async def test_an_older_push_state_is_adopted_not_resent(
    server: EmulatorServer, warehouse: Warehouse
) -> None:
    # as a warehouse written before the log existed holds it (or a row-by-row push's)
    warehouse.query("CREATE TABLE push_state AS " + old_state(warehouse, 50, account_of(server)))
    warehouse.query("ALTER TABLE push_state ADD PRIMARY KEY (account_id, destination, identity)")
    dry = await push(server, warehouse, 60, dry_run=True)
    assert (dry["sent"], dry["unchanged"]) == (10, 50)
    assert count(warehouse, "SELECT count(*) FROM push_state") == 50  # a dry run moves nothing
    again = await push(server, warehouse, 60)
    assert (again["sent"], again["unchanged"]) == (10, 50)
    assert count(warehouse, "SELECT count(*) FROM push_state") == 0
    assert count(warehouse, "SELECT count(*) FROM push_log") == 60
    assert count(warehouse, "SELECT count(DISTINCT key) FROM push_log") == 60
    # the adopted lines keep their job and time
    assert (
        count(
            warehouse,
            "SELECT count(*) FROM push_log JOIN push_log_adopted USING (batch) "
            "WHERE job_id = 'job-1' AND pushed_at = TIMESTAMPTZ '2026-12-01 10:00:00+00'",
        )
        == 20
    )
    # and stay unchanged while their rows are; a changed one is sent and replaced
    last = await push(server, warehouse, 60, changed=7)
    assert (last["sent"], last["unchanged"]) == (1, 59)
    assert count(warehouse, "SELECT count(*) FROM push_log") == 60


async def test_a_log_in_its_layout_before_2026_12_07_is_moved_not_resent(
    server: EmulatorServer, warehouse: Warehouse
) -> None:
    warehouse.query("CREATE TABLE push_log AS " + old_state(warehouse, 50, account_of(server)))
    again = await push(server, warehouse, 50)
    assert (again["sent"], again["unchanged"]) == (0, 50)
    assert [r[0] for r in warehouse.query("DESCRIBE push_log")] == ["batch", "key", "hash"]
    assert count(warehouse, "SELECT count(DISTINCT key) FROM push_log") == 50
    assert count(warehouse, "SELECT count(*) FROM push_log_adopted") == 3
