"""The generated spec tables and coverage page are what the script writes today."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from kbridge import catalog
from kbridge.emulator.http._spectables import REQUEST_TYPES, RESOURCE_PATHS

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[4]


def _script() -> ModuleType:
    path = ROOT / "scripts" / "gen_emulator_coverage.py"
    spec = importlib.util.spec_from_file_location("gen_emulator_coverage", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_emulator_coverage", module)
    spec.loader.exec_module(module)
    return module


def test_committed_files_are_current() -> None:
    gen = _script()
    spec = json.loads(gen.DEFAULT_SPEC.read_text())
    assert gen.TABLES_OUT.read_text() == gen._format_python(gen.render_tables(spec)), (
        "run scripts/gen_emulator_coverage.py"
    )
    assert gen.COVERAGE_OUT.read_text() == gen.render_coverage(gen._implemented()), (
        "run scripts/gen_emulator_coverage.py"
    )


def test_tables_cover_the_resources_the_emulator_serves() -> None:
    for rtype in ("profile", "list", "segment", "metric", "event", "account"):
        assert RESOURCE_PATHS[rtype] == f"/api/{rtype}s"
    assert REQUEST_TYPES["create_profile"] == (("profile",), False)
    assert REQUEST_TYPES["add_profiles_to_list"] == (("profile",), True)
    # every table entry names a real operation
    assert all(catalog.get(op_id) for op_id in REQUEST_TYPES)


def test_coverage_page_lists_every_operation_once() -> None:
    gen = _script()
    page = gen.render_coverage(frozenset({"get_profiles"}))
    rows = [line for line in page.splitlines() if line.startswith("| `")]
    assert len(rows) == len(catalog.all_operations())
    assert "| `get_profiles` | GET | `/api/profiles` | yes |" in rows
    assert "| `get_events` | GET | `/api/events` | — |" in rows
    assert "**1 of 345**" in page
