"""``kbridge analytics churn`` through the real console script, on a hand-built warehouse."""

from __future__ import annotations

from pathlib import Path

import pytest

from kbridge.core import loads
from kbridge.warehouse import open_warehouse
from tests.e2e.test_cli import run
from tests.unit.analytics.churn_shop import LEAVERS, seed_churn_shop
from tests.unit.analytics.seed import ACCOUNT, Seed

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def warehouse_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("churn") / "wh.duckdb"
    wh = open_warehouse(str(path))
    seed_churn_shop(Seed(wh))
    wh.close()
    return f"duckdb:///{path}"


def test_churn_json_has_the_model_calibration_and_riskiest_profiles(warehouse_url: str) -> None:
    result = run("analytics", "churn", "--from", warehouse_url, "--as-of", "2026-06-01",
                 "--top", "5", "--output", "json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    doc = loads(result.stdout)
    summary = doc["summary"]
    assert summary["account"] == ACCOUNT
    assert summary["cutoff"] == "2026-03-03T00:00:00+00:00"
    assert (summary["trained_on"], summary["holdout"], summary["holdout_auc"]) == (28, 12, 1.0)
    assert summary["klaviyo_auc"] is None
    model, calibration, profiles = doc["tables"]
    assert model["rows"][0]["feature"] == "intercept"
    assert sum(r["profiles"] for r in calibration["rows"]) == 12
    assert len(profiles["rows"]) == 5
    assert all(r["profile_id"] in LEAVERS for r in profiles["rows"])
    assert profiles["title"].endswith("top 5 of 42")


def test_churn_table_output_and_a_too_long_horizon(warehouse_url: str, tmp_path: Path) -> None:
    table = run("analytics", "churn", "--from", warehouse_url, "--output", "table")
    assert table.returncode == 0, table.stderr
    assert "holdout_auc: 1" in table.stdout
    assert "Calibration on the holdout" in table.stdout
    short = run("analytics", "churn", "--from", warehouse_url, "--horizon", "700")
    assert short.returncode == 1
    assert short.stderr.startswith("error: no profile was active before the cutoff")
    assert "Traceback" not in short.stderr
