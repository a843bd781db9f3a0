"""``kbridge report`` through the real console script, on a hand-built warehouse."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kbridge.warehouse import open_warehouse
from tests.e2e.test_cli import run
from tests.unit.analytics.campaign_shop import build

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def warehouse_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("report") / "shop.duckdb"
    wh = open_warehouse(f"duckdb:///{path}")
    try:
        build("A").write(wh)
    finally:
        wh.close()
    return f"duckdb:///{path}"


def test_report_writes_one_self_contained_html_file(warehouse_url: str, tmp_path: Path) -> None:
    target = tmp_path / "out" / "report.html"
    result = run("report", "--from", warehouse_url, "--account", "A", "--html", str(target))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"report of account A written to {target.resolve()}"
    html = target.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert "Campaign performance" in html
    assert "Which messages drove orders" in html
    assert "Spring sale" in html
    assert html.count("<svg") >= 3
    # offline: nothing is fetched (no scripts, stylesheets, images or fonts from elsewhere)
    assert "<script" not in html
    assert "<link" not in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "url(" not in html


def test_as_of_before_any_send_leaves_nothing_to_show(warehouse_url: str, tmp_path: Path) -> None:
    target = tmp_path / "early.html"
    result = run("report", "--from", warehouse_url, "--account", "A", "--as-of", "2000-01-01",
                 "--html", str(target))  # fmt: skip
    assert result.returncode == 0, result.stderr
    html = target.read_text(encoding="utf-8")
    assert "as of 2000-01-01 00:00 UTC" in html
    assert "Spring sale" not in html
    assert "Not available" in html


def test_foreseeable_problems_are_one_line(warehouse_url: str, tmp_path: Path) -> None:
    missing = run("report", "--from", f"duckdb:///{tmp_path}/none.duckdb", "--html",
                  str(tmp_path / "r.html"))  # fmt: skip
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: no warehouse at ")
    wrong = run("report", "--from", warehouse_url, "--account", "NOPE",
                "--html", str(tmp_path / "r.html"))  # fmt: skip
    assert wrong.returncode == 1
    assert "'NOPE'" in wrong.stderr
    directory = run("report", "--from", warehouse_url, "--account", "A", "--html", str(tmp_path))
    assert directory.returncode == 1
    assert directory.stderr.startswith(f"error: --html: {tmp_path} is a directory")
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    unwritable = run(
        "report", "--from", warehouse_url, "--account", "A", "--html", str(blocked / "r.html")
    )
    assert unwritable.returncode == 1
    assert unwritable.stderr.startswith(f"error: --html: cannot write {blocked / 'r.html'}")
    bad_date = run("report", "--from", warehouse_url, "--account", "A", "--as-of", "soon")
    assert bad_date.returncode == 1
    assert "--as-of: 'soon' is not an ISO date-time" in bad_date.stderr
    for r in (missing, wrong, directory, unwritable, bad_date):
        assert "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r.html").exists()
