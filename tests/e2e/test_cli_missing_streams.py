"""A warehouse synced with some streams only: each analysis names what is missing.

``kbridge sync --streams …`` leaves the other tables out. An analysis that
reads one of them says, in one line, which table is missing and the sync that
adds it; the report shows such sections as not available and writes the rest.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kbridge.warehouse import open_warehouse
from tests.e2e.test_cli import run
from tests.unit.analytics.seed import Seed
from tests.unit.analytics.test_lifecycle import seed_lifecycle

pytestmark = pytest.mark.e2e

ADVICE = "the warehouse has no `metrics` table: run `kbridge sync --streams metrics"


@pytest.fixture(scope="module")
def without_metrics(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Profiles and events synced, metrics not (as after ``--streams profiles,events``)."""
    path = tmp_path_factory.mktemp("partial") / "wh.duckdb"
    wh = open_warehouse(f"duckdb:///{path}")
    try:
        seed_lifecycle(Seed(wh))
        wh.query("DROP TABLE metrics")
    finally:
        wh.close()
    return f"duckdb:///{path}"


@pytest.mark.parametrize(
    "command", [("analytics", "rfm"), ("analytics", "churn"), ("analytics", "lifecycle")]
)
def test_an_analysis_names_the_missing_stream_and_the_sync_that_adds_it(
    without_metrics: str, command: tuple[str, ...]
) -> None:
    result = run(*command, "--from", without_metrics, "--as-of", "2026-06-01")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {ADVICE}")
    assert "Catalog Error" not in result.stderr


def test_the_report_marks_the_sections_that_need_it_not_available(
    without_metrics: str, tmp_path: Path
) -> None:
    target = tmp_path / "report.html"
    result = run("report", "--from", without_metrics, "--html", str(target))
    assert result.returncode == 0, result.stderr
    assert "Catalog Error" not in result.stderr
    html = target.read_text(encoding="utf-8")
    assert "Not available" in html
    assert "kbridge sync --streams metrics" in html
