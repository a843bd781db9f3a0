"""docs/warehouse.md documents every table and column the sync creates."""

from __future__ import annotations

from pathlib import Path

import pytest

from kbridge.sync import STREAMS
from kbridge.warehouse import SEEN_TABLE, STATE_TABLE

pytestmark = pytest.mark.unit

DOC = Path(__file__).parents[3] / "docs" / "warehouse.md"


def test_every_table_and_column_is_documented() -> None:
    text = DOC.read_text()
    tables = [t for s in STREAMS for t in s.tables] + [STATE_TABLE, SEEN_TABLE]
    for t in tables:
        section = text.split(f"### `{t.name}`\n", 1)
        assert len(section) == 2, f"docs/warehouse.md has no section for {t.name}"
        body = section[1].split("\n### ", 1)[0]
        for c in t.columns:
            assert f"| `{c.name}` | {c.type} |" in body, f"{t.name}.{c.name} is not documented"
