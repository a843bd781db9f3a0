"""The real console script, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

KBRIDGE = str(Path(sys.executable).with_name("kbridge"))


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [KBRIDGE, *args], capture_output=True, text=True, check=False, env=env, timeout=timeout
    )


def test_help_lists_the_command_groups() -> None:
    result = run("--help")
    assert result.returncode == 0, result.stderr
    assert "catalog" in result.stdout


def test_version_names_the_revision() -> None:
    result = run("version")
    assert result.returncode == 0
    assert "2026-07-15" in result.stdout


def test_catalog_show_and_unknown_operation() -> None:
    ok = run("catalog", "show", "get_events")
    assert ok.returncode == 0
    assert "350/s burst, 3500/min steady" in ok.stdout
    bad = run("catalog", "show", "get_unicorns")
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: no Klaviyo operation named 'get_unicorns'")
    assert "Traceback" not in bad.stderr
