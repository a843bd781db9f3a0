"""``duckdb:///tmp/x`` is the relative path ``tmp/x``: every CLI error about it says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from kbridge.cli.app import app
from kbridge.cli.demo import demo_target
from kbridge.cli.warehouse_url import WAREHOUSE_URL_HELP, relative_path_hint

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        (
            "duckdb:///tmp/x.duckdb",
            "duckdb:///tmp/x.duckdb is the relative path tmp/x.duckdb; "
            "use duckdb:////tmp/x.duckdb for /tmp/x.duckdb",
        ),
        (
            "duckdb:///srv/kb.duckdb?threads=2",
            "duckdb:///srv/kb.duckdb?threads=2 is the relative path srv/kb.duckdb; "
            "use duckdb:////srv/kb.duckdb?threads=2 for /srv/kb.duckdb",
        ),
        ("duckdb:////tmp/x.duckdb", None),  # absolute already
        ("duckdb:///./kbridge.duckdb", None),  # plainly relative
        ("duckdb:///kbridge.duckdb", None),  # a file name alone cannot be meant as absolute
        ("duckdb:///:memory:", None),
        ("postgresql://u@h/db", None),
        ("tmp/x.duckdb", None),
    ],
)
def test_hint(url: str, hint: str | None) -> None:
    assert relative_path_hint(url) == hint


def test_the_help_of_every_warehouse_option_says_which_is_absolute() -> None:
    runner = CliRunner()
    for command in (["sync"], ["analytics", "lifecycle"], ["report"], ["demo"]):
        result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "300"})
        assert result.exit_code == 0, result.output
        assert "duckdb:////" in result.output, command
    assert "duckdb:////" in WAREHOUSE_URL_HELP


def test_analytics_on_a_missing_relative_file_names_the_absolute_spelling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app, ["analytics", "lifecycle", "--from", "duckdb:///tmp/none.duckdb"]
    )
    assert result.exit_code == 1
    assert "no warehouse at tmp/none.duckdb" in result.output
    assert "use duckdb:////tmp/none.duckdb for /tmp/none.duckdb" in result.output


@pytest.mark.parametrize(
    ("to", "path"),
    [
        ("duckdb:///demo.duckdb", Path("demo.duckdb")),
        ("duckdb:////srv/demo.duckdb", Path("/srv/demo.duckdb")),
        ("out/demo.duckdb", Path("out/demo.duckdb")),  # a plain path, as before
    ],
)
def test_demo_takes_the_same_urls_as_the_rest(to: str, path: Path) -> None:
    assert demo_target(to) == path


def test_demo_refuses_a_warehouse_it_cannot_write_in_one_line() -> None:
    result = CliRunner().invoke(app, ["demo", "--to", "postgresql://u@h/db"])
    assert result.exit_code == 1
    assert "the demo writes a DuckDB file" in result.output
