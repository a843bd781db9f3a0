"""Top products by revenue, overall and per RFM segment, on a hand-built warehouse."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from kbridge.analytics import rfm
from kbridge.analytics.errors import MissingTableError
from kbridge.analytics.products import top_products
from kbridge.warehouse import Warehouse, open_warehouse
from tests.unit.analytics.seed import ACCOUNT, AS_OF, Seed, ago

pytestmark = pytest.mark.unit


@pytest.fixture
def warehouse() -> Iterator[Warehouse]:
    wh = open_warehouse("duckdb:///:memory:")
    yield wh
    wh.close()


def line(seed: Seed, pid: str, days: float, **props: Any) -> None:
    seed.event(pid, "Ordered Product", ago(days), properties=props)


def seed_shop(seed: Seed, *, catalogue: bool = True) -> Warehouse:
    """A (3 recent orders) is Loyal, B (one old order) Lost, C never ordered."""
    if catalogue:
        for item, external, title in (
            ("I1", "1001", "Trail Shoe"),
            ("I2", "1002", "Sock"),
            ("I3", "1003", "Jacket"),
        ):
            seed.row("catalog_items", id=item, external_id=external, title=title, price=1.0)
        seed.row("catalog_variants", id="V3", item_id="I3", sku="SKU-1003", title="Jacket")
    for pid in ("A", "B", "C"):
        seed.profile(pid, ago(400))
    for days, value in ((1, 100.0), (10, 20.0), (20, 100.0)):
        seed.event("A", "Placed Order", ago(days), value)
    seed.event("B", "Placed Order", ago(200), 45.0)
    line(seed, "A", 1, ProductID="1001", ProductName="Shoe (old name)", **{"$value": 100.0})
    # Klaviyo's own id form of a custom-catalogue item
    line(seed, "A", 10, ProductID="$custom:::$default:::1002", Quantity=2, **{"$value": 20.0})
    # an id the catalogue does not know, but a variant's SKU; no value: price × quantity
    line(seed, "A", 20, ProductID="9999", SKU="SKU-1003", Price=50.0, Quantity=2)
    line(seed, "B", 200, ProductID="1002", value="15")
    line(seed, "B", 200, ProductID="1002", **{"$value": "n/a"})  # not a number: 0
    line(seed, "B", 200, ProductID="7777", ProductName="Old Hat", **{"$value": 30.0})
    line(seed, "B", -1, ProductID="1001", **{"$value": 500.0})  # after AS_OF
    line(seed, "C", 5, ProductID="1003", **{"$value": 40.0})  # C placed no order
    return seed.commit()


def test_top_products_join_lines_to_the_catalogue(warehouse: Warehouse) -> None:
    seed_shop(Seed(warehouse))
    result = top_products(warehouse, ACCOUNT, as_of=AS_OF)
    got = [
        (
            r["rank"],
            r["product_id"],
            r["item_id"],
            r["name"],
            r["in_catalogue"],
            r["lines"],
            r["quantity"],
            r["customers"],
            r["revenue"],
        )
        for r in result.overall.records()
    ]
    assert got == [
        (1, "1003", "I3", "Jacket", True, 2, 3.0, 2, 140.0),
        (2, "1001", "I1", "Trail Shoe", True, 1, 1.0, 1, 100.0),
        (3, "1002", "I2", "Sock", True, 3, 4.0, 2, 35.0),
        (4, "7777", None, "Old Hat", False, 1, 1.0, 1, 30.0),
    ]
    assert result.overall.column("revenue_share") == [0.459, 0.3279, 0.1148, 0.0984]
    n = result.overall.notes
    assert (n["lines"], n["matched_lines"], n["unmatched_lines"]) == (7, 6, 1)
    assert (n["revenue"], n["unmatched_revenue"]) == (305.0, 30.0)
    assert n["catalogue_items"] == 3


def test_top_products_per_rfm_segment(warehouse: Warehouse) -> None:
    seed_shop(Seed(warehouse))
    segments = {
        r["profile_id"]: r["segment"]
        for r in rfm(warehouse, ACCOUNT, as_of=AS_OF).profiles.records()
    }
    assert segments == {"A": "Loyal", "B": "Lost"}
    result = top_products(warehouse, ACCOUNT, as_of=AS_OF)
    got = [
        (r["segment"], r["rank"], r["name"], r["revenue"], r["segment_revenue_share"])
        for r in result.by_segment.records()
    ]
    # ties rank by name; segments in rule order, then the lines of profiles with no order
    assert got == [
        ("Loyal", 1, "Jacket", 100.0, 0.4545),
        ("Loyal", 2, "Trail Shoe", 100.0, 0.4545),
        ("Loyal", 3, "Sock", 20.0, 0.0909),
        ("Lost", 1, "Old Hat", 30.0, 0.6667),
        ("Lost", 2, "Sock", 15.0, 0.3333),
        ("No order", 1, "Jacket", 40.0, 1.0),
    ]
    assert result.by_segment.notes["segment_revenue"] == {
        "Loyal": 220.0,
        "Lost": 45.0,
        "No order": 40.0,
    }


def test_top_limits_each_list(warehouse: Warehouse) -> None:
    seed_shop(Seed(warehouse))
    result = top_products(warehouse, ACCOUNT, as_of=AS_OF, top=1)
    assert result.overall.column("name") == ["Jacket"]
    assert result.by_segment.column("name") == ["Jacket", "Old Hat", "Jacket"]
    assert result.overall.notes["lines"] == 7  # the notes count every line, not the top
    with pytest.raises(ValueError, match="top"):
        top_products(warehouse, ACCOUNT, as_of=AS_OF, top=0)


def test_since_bounds_the_lines(warehouse: Warehouse) -> None:
    seed_shop(Seed(warehouse))
    result = top_products(warehouse, ACCOUNT, since=ago(15), as_of=AS_OF)
    assert result.overall.column("name") == ["Trail Shoe", "Jacket", "Sock"]
    assert result.overall.notes["lines"] == 3


def test_without_a_catalogue_every_line_is_unmatched(warehouse: Warehouse) -> None:
    seed_shop(Seed(warehouse), catalogue=False)
    result = top_products(warehouse, ACCOUNT, as_of=AS_OF)
    n = result.overall.notes
    assert (n["lines"], n["unmatched_lines"], n["unmatched_revenue"]) == (7, 7, 305.0)
    assert n["catalogue_items"] == 0
    # named by the line's own ProductName, else its id (Klaviyo's id form read as the id)
    assert result.overall.column("name") == ["9999", "Shoe (old name)", "1003", "1002", "Old Hat"]
    assert result.overall.column("product_id") == ["9999", "1001", "1003", "1002", "7777"]
    assert not any(result.overall.column("in_catalogue"))


def test_a_warehouse_without_events_says_what_to_sync() -> None:
    wh = open_warehouse("duckdb:///:memory:")
    try:
        with pytest.raises(MissingTableError, match="events"):
            top_products(wh, ACCOUNT, as_of=AS_OF)
    finally:
        wh.close()
