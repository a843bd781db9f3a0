"""The DuckDB path's state: appended to ``push_log`` (no key index), one line per identity,
and an older warehouse's ``push_state`` adopted rather than resent."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kbridge.api import AsyncClient, ClientConfig, LimiterConfig
from kbridge.core import ManualClock
from kbridge.emulator import EmulatorServer
from kbridge.push import JobLimits, push_profiles, read_source
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
    assert count(warehouse, "SELECT count(DISTINCT identity) FROM push_log") == 50
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


async def test_an_older_push_state_is_adopted_not_resent(
    server: EmulatorServer, warehouse: Warehouse
) -> None:
    # as a warehouse written before the log existed holds it
    await push(server, warehouse, 50)
    warehouse.query(
        "INSERT INTO push_state SELECT account_id, destination, identity, hash, job_id, "
        "pushed_at FROM push_log"
    )
    warehouse.query("DROP TABLE push_log")
    dry = await push(server, warehouse, 60, dry_run=True)
    assert (dry["sent"], dry["unchanged"]) == (10, 50)
    assert count(warehouse, "SELECT count(*) FROM push_state") == 50  # a dry run moves nothing
    again = await push(server, warehouse, 60)
    assert (again["sent"], again["unchanged"]) == (10, 50)
    assert count(warehouse, "SELECT count(*) FROM push_state") == 0
    assert count(warehouse, "SELECT count(*) FROM push_log") == 60
    assert count(warehouse, "SELECT count(DISTINCT identity) FROM push_log") == 60
