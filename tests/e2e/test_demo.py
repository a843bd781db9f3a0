"""``kbridge demo`` (what ``make demo`` runs) through the real console script, on a tiny account.

One run (it waits on the reporting API's 2 requests a minute), several checks:
the sync is exact, the summary is the warehouse's, the report is written.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from kbridge.analytics import lifecycle
from kbridge.analytics._sql import accounts
from kbridge.warehouse import open_warehouse
from tests.e2e.test_cli import KBRIDGE

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, Path]:
    out = tmp_path_factory.mktemp("demo")
    target, html = out / "demo.duckdb", out / "demo-report.html"
    # the default file names, relative to the working directory, as `make demo` runs it
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    result = subprocess.run([KBRIDGE, "demo", "--profiles", "150", "--events", "1200"],
                            capture_output=True, text=True, check=False, env=env, timeout=300,
                            cwd=out)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "leaked" not in result.stderr
    return result.stdout, target, html


def test_demo_syncs_a_small_account_exactly_once(demo: tuple[str, Path, Path]) -> None:
    stdout, target, _ = demo
    assert "connected to account" in stdout
    assert "profiles: 150 in the warehouse, 150 in the account" in stdout
    counts = [line for line in stdout.splitlines() if line.startswith("events: ")]
    assert len(counts) == 1
    found, expected = counts[0].removeprefix("events: ").split(" in the warehouse, ")
    assert found == expected.removesuffix(" in the account")
    assert "complete: every record synced exactly once" in stdout
    assert "throttled (429) 0" in stdout
    assert re.search(r"│ flow_series_daily\s+│ \d+", stdout)  # the emulator serves it now
    assert target.exists()


def test_demo_prints_the_warehouse_lifecycle_stages(demo: tuple[str, Path, Path]) -> None:
    stdout, target, _ = demo
    assert "Where your profiles are" in stdout
    wh = open_warehouse(f"duckdb:///{target}")
    try:
        (account,) = accounts(wh)
        expected = lifecycle(wh, account, months=1).stages.records()
    finally:
        wh.close()
    printed = dict(re.findall(r"│ (\w+)\s+│ ([\d,]+)\s+│ [\d.]+%", stdout))
    assert printed == {r["stage"]: f"{r['profiles']:,}" for r in expected}
    assert sum(r["profiles"] for r in expected) > 0


def test_demo_names_top_campaigns_and_writes_the_report(demo: tuple[str, Path, Path]) -> None:
    stdout, _, html = demo
    assert re.search(r"Top (\d campaigns by revenue|campaigns by revenue: no order)", stdout)
    assert f"report written to {html.resolve()}" in stdout.replace("\n", "")
    page = html.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "Campaign performance" in page
    assert "<script" not in page


def test_demo_scores_its_churn_model_against_the_hidden_truth(
    demo: tuple[str, Path, Path],
) -> None:
    stdout, _, _ = demo
    found = re.search(r"churn model: AUC (\d\.\d\d) against the ([\d,]+) hidden churners", stdout)
    assert found, stdout
    # how good the model is, is judged on a larger account (test_churn_emulator.py); 150
    # profiles only show the demo trains it and scores it against the generator's truth
    assert 0.0 <= float(found[1]) <= 1.0
    assert int(found[2].replace(",", "")) > 0
    # the report shows the holdout AUC: the demo says its own figure is in-sample, and gives both
    flat = " ".join(stdout.split())
    assert re.search(r"profiles \(in-sample: including the [\d,]+ it learned from", flat), flat
    assert re.search(r"holdout AUC \d\.\d\d on the [\d,]+ profiles it never saw", flat), flat
