"""``kbridge analytics …`` through the real console script, on hand-built warehouses."""

from __future__ import annotations

from pathlib import Path

import pytest

from kbridge.core import loads
from kbridge.warehouse import open_warehouse
from tests.e2e.test_cli import run
from tests.unit.analytics.seed import ACCOUNT, Seed
from tests.unit.analytics.test_lifecycle import seed_lifecycle

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def warehouse_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("analytics") / "wh.duckdb"
    wh = open_warehouse(str(path))
    seed_lifecycle(Seed(wh))
    wh.close()
    return f"duckdb:///{path}"


def test_lifecycle_json_has_the_stage_counts(warehouse_url: str) -> None:
    result = run("analytics", "lifecycle", "--from", warehouse_url, "--as-of", "2026-06-01",
                 "--months", "2", "--output", "json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    doc = loads(result.stdout)
    assert doc["summary"] == {"account": ACCOUNT, "as_of": "2026-06-01T00:00:00+00:00"}
    stages = {r["stage"]: r["profiles"] for r in doc["tables"][0]["rows"]}
    assert stages["engaged"] == 2
    assert stages["never_engaged"] == 1
    assert sum(stages.values()) == 8


def test_lifecycle_table_output(warehouse_url: str) -> None:
    result = run("analytics", "lifecycle", "--from", warehouse_url, "--output", "table")
    assert result.returncode == 0, result.stderr
    assert "Lifecycle stages" in result.stdout
    assert "never_engaged" in result.stdout


def test_foreseeable_problems_are_one_line(warehouse_url: str, tmp_path: Path) -> None:
    missing = run("analytics", "lifecycle", "--from", f"duckdb:///{tmp_path}/none.duckdb")
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: no warehouse at ")
    assert not (tmp_path / "none.duckdb").exists()
    wrong = run("analytics", "lifecycle", "--from", warehouse_url, "--account", "NOPE")
    assert wrong.returncode == 1
    assert "no profiles or events for account 'NOPE'" in wrong.stderr
    bad_date = run("analytics", "lifecycle", "--from", warehouse_url, "--as-of", "yesterday")
    assert bad_date.returncode == 1
    assert "--as-of: 'yesterday' is not an ISO date-time" in bad_date.stderr
    for r in (missing, wrong, bad_date):
        assert "Traceback" not in r.stderr
