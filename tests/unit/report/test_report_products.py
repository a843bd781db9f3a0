"""The report's product section, on hand-built warehouses."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from kbridge.report import SECTIONS, build_report
from kbridge.warehouse import Warehouse, open_warehouse
from tests.unit.analytics.seed import ACCOUNT, AS_OF, Seed
from tests.unit.analytics.test_products import seed_shop
from tests.unit.report.test_report_segments import section

pytestmark = pytest.mark.unit

GENERATED = datetime(2026, 6, 2, tzinfo=UTC)
PRODUCTS = tuple(s for s in SECTIONS if s.anchor == "products")


@pytest.fixture
def warehouse() -> Iterator[Warehouse]:
    wh = open_warehouse("duckdb:///:memory:")
    yield wh
    wh.close()


def test_the_section_ranks_products_and_counts_unmatched_lines(warehouse: Warehouse) -> None:
    seed_shop(Seed(warehouse))
    html = build_report(warehouse, ACCOUNT, generated_at=GENERATED, as_of=AS_OF, sections=PRODUCTS)
    part = section(html, "products")
    assert "Not available" not in part
    assert "<b>7</b><span>order lines</span>" in part
    assert "<b>305.00</b><span>their revenue (USD)</span>" in part
    assert "<b>85.7 %</b><span>lines matched to the catalogue</span>" in part
    assert "1 of 7 order lines (30.00 USD) match no catalogue item" in part
    assert part.count("<svg") == 1
    # the chart's bars in revenue order, the unmatched product marked
    jacket, shoe, hat = (part.index(s) for s in ("Jacket", "Trail Shoe", "Old Hat (not in"))
    assert jacket < shoe < hat
    # one table per segment, in rule order, each with its revenue
    heads = [h.split("</h4>")[0] for h in part.split("<h4>")[1:]]
    assert heads == ["Loyal · 220.00 USD", "Lost · 45.00 USD", "No order · 40.00 USD"]


def test_without_order_lines_the_section_says_what_to_sync(warehouse: Warehouse) -> None:
    seed = Seed(warehouse)
    seed.profile("A", AS_OF)
    seed.event("A", "Placed Order", AS_OF, 10.0)
    seed.commit()
    html = build_report(warehouse, ACCOUNT, generated_at=GENERATED, as_of=AS_OF, sections=PRODUCTS)
    assert "Not available.</b> no Ordered Product events (order lines)" in html


def test_without_a_catalogue_the_section_says_so(warehouse: Warehouse) -> None:
    seed_shop(Seed(warehouse), catalogue=False)
    html = build_report(warehouse, ACCOUNT, generated_at=GENERATED, as_of=AS_OF, sections=PRODUCTS)
    assert "The catalogue was not synced (stream catalog_items)" in html
    assert "<b>0.0 %</b><span>lines matched to the catalogue</span>" in html


def test_an_empty_warehouse_is_not_available() -> None:
    wh = open_warehouse("duckdb:///:memory:")
    try:
        html = build_report(wh, ACCOUNT, generated_at=GENERATED, sections=PRODUCTS)
    finally:
        wh.close()
    assert html.count("Not available.") == 1
    assert "the warehouse has no `profiles`, `events` or `metrics` table" in html
