"""Pushing with a PostgreSQL warehouse: the state that ``analytics … --push --from
postgresql://…`` keeps there (rows from Python), and ``kbridge push profiles --from
postgresql://… --table T`` (rows read from PostgreSQL, row by row)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kbridge.api import AsyncClient, ClientConfig, LimiterConfig
from kbridge.core import ManualClock, loads
from kbridge.emulator import EmulatorServer
from kbridge.push import PushInputError, push_profiles, read_source
from kbridge.warehouse import open_warehouse
from tests.e2e.test_cli import run

pytestmark = pytest.mark.integration


@pytest.mark.anyio
async def test_changed_rows_only_and_errors_with_the_state_in_postgresql(
    emulator_factory: Callable[..., EmulatorServer], postgres_url: str
) -> None:
    server = emulator_factory(profiles=0, events=0)
    wh = open_warehouse(postgres_url)
    rows = [{"email": f"p{i}@example.com", "churn_risk": i / 10} for i in range(5)]
    rows.append({"email": "not-an-email", "churn_risk": 1.0})

    async def push() -> dict[str, int]:
        config = ClientConfig(limiter=LimiterConfig(limit_factor=None))
        async with AsyncClient(server.api_key, base_url=server.base_url, config=config) as c:
            summary = await push_profiles(
                c, rows, warehouse=wh, properties=["churn_risk"], clock=ManualClock()
            )
        return summary.as_dict()

    try:
        first = await push()
        assert (first["sent"], first["errors"], first["jobs"]) == (6, 1, 1)
        assert wh.query("SELECT identity, field FROM push_errors") == [("not-an-email", "email")]
        again = await push()
        # the refused row is tried again; the five imported are unchanged
        assert (again["sent"], again["unchanged"], again["errors"]) == (1, 5, 1)
        assert wh.query("SELECT count(*) FROM push_state")[0][0] == 5
    finally:
        wh.close()


def test_push_profiles_from_a_postgresql_table_from_the_command_line(
    emulator_factory: Callable[..., EmulatorServer], postgres_url: str, tmp_path: Path
) -> None:
    server = emulator_factory(profiles=0, events=0)
    wh = open_warehouse(postgres_url)
    try:
        wh.query(
            "CREATE TABLE scores AS SELECT 'q' || i || '@example.com' AS email, "
            "i / 10.0 AS churn_risk FROM generate_series(0, 24) AS t(i)"
        )
        with pytest.raises(PushInputError, match="no column 'nope'"):
            read_source(wh, table="scores").check("email", ["nope"])
        with pytest.raises(PushInputError, match="--file is read through DuckDB"):
            read_source(wh, file=tmp_path / "x.csv")
    finally:
        wh.close()
    args = ("push", "profiles", "--from", postgres_url, "--table", "scores",
            "--properties", "churn_risk", "--job-profiles", "10", "--json",
            "--api-key", server.api_key, "--base-url", server.base_url)  # fmt: skip
    first = run(*args)
    assert first.returncode == 0, first.stderr
    assert loads(first.stdout) == {"rows": 25, "sent": 25, "unchanged": 0,
                                   "skipped_no_consent": 0, "errors": 0, "jobs": 3}  # fmt: skip
    emails = {p.email for p in server.state.backend.store.profiles if p is not None}
    assert {f"q{i}@example.com" for i in range(25)} <= emails
    again = run(*args)
    assert again.returncode == 0, again.stderr
    assert (loads(again.stdout)["sent"], loads(again.stdout)["unchanged"]) == (0, 25)
