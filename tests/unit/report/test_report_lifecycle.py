"""The report's lifecycle section: the stage counts of the warehouse, or why there are none."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from kbridge.report import build_report
from kbridge.report.sections import SECTIONS
from kbridge.warehouse import Warehouse, open_warehouse
from tests.unit.analytics.seed import ACCOUNT, AS_OF, Seed
from tests.unit.analytics.test_lifecycle import seed_lifecycle

pytestmark = pytest.mark.unit

GENERATED = datetime(2026, 6, 2, tzinfo=UTC)
LIFECYCLE = tuple(s for s in SECTIONS if s.anchor == "lifecycle")


@pytest.fixture
def warehouse() -> Iterator[Warehouse]:
    wh = open_warehouse("duckdb:///:memory:")
    try:
        yield wh
    finally:
        wh.close()


def _row(html: str, stage: str) -> str:
    start = html.index(f"<td>{stage}</td>")
    return html[start : html.index("</tr>", start)]


def test_the_section_counts_one_profile_per_stage(warehouse: Warehouse) -> None:
    seed_lifecycle(Seed(warehouse))
    html = build_report(warehouse, ACCOUNT, generated_at=GENERATED, as_of=AS_OF,
                        sections=LIFECYCLE)  # fmt: skip
    assert "Where your customers are in their lifecycle" in html
    assert "Not available" not in html
    assert "<svg" in html
    # seed_lifecycle: 8 profiles, two of them engaged (P_ENGAGED, P_BUYER), one per other stage
    assert "<b>8</b><span>profiles</span>" in html
    assert '<td class="n">2</td>' in _row(html, "engaged")
    assert '<td class="n">25.0 %</td>' in _row(html, "engaged")
    for stage in ("new", "active", "at risk", "lapsed", "churned", "never engaged"):
        assert '<td class="n">1</td>' in _row(html, stage), stage
    assert "last active more than 180 days ago" in _row(html, "churned")


def test_an_empty_warehouse_says_what_to_sync(warehouse: Warehouse) -> None:
    html = build_report(warehouse, ACCOUNT, generated_at=GENERATED, sections=LIFECYCLE)
    assert "Not available." in html
    assert "profiles and events were not synced" in html
    assert "<svg" not in html


def test_an_account_without_data_is_not_available(warehouse: Warehouse) -> None:
    seed_lifecycle(Seed(warehouse))
    html = build_report(warehouse, "OTHER", generated_at=GENERATED, sections=LIFECYCLE)
    assert "Not available." in html
    assert "no profiles or events for account" in html
