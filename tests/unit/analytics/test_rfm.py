from __future__ import annotations

from collections.abc import Iterator

import pytest

from kbridge.analytics import AnalyticsError, SegmentRule, rfm
from kbridge.analytics.rfm import quintile_scores
from kbridge.warehouse import Warehouse, open_warehouse
from tests.unit.analytics.campaign_shop import build
from tests.unit.analytics.seed import ACCOUNT, AS_OF, Seed, ago

pytestmark = pytest.mark.unit

#: profile → (days since its last order, orders, total value)
CUSTOMERS = {
    "A": (1, 6, 900.0),
    "B": (2, 1, 20.0),
    "C": (3, 2, 25.0),
    "D": (4, 4, 400.0),
    "E": (5, 5, 500.0),
    "F": (6, 1, 30.0),
    "G": (7, 7, 1000.0),
    "H": (8, 3, 300.0),
    "I": (9, 1, 40.0),
    "J": (10, 1, 10.0),
}


@pytest.fixture
def warehouse() -> Iterator[Warehouse]:
    wh = open_warehouse("duckdb:///:memory:")
    yield wh
    wh.close()


def seed_rfm(seed: Seed) -> Warehouse:
    """Ten customers with distinct recency and value; four share the lowest frequency (1)."""
    for pid, (days, orders, total) in CUSTOMERS.items():
        seed.profile(pid, ago(400))
        # the latest order carries the rest of the value; earlier ones 10 each, weeks apart
        seed.event(pid, "Placed Order", ago(days), total - 10.0 * (orders - 1))
        for k in range(1, orders):
            seed.event(pid, "Placed Order", ago(days + 14 * k), 10.0)
        seed.event(pid, "Ordered Product", ago(days), 999.0)  # not an order
    seed.profile("BROWSER", ago(100))  # never ordered: not a customer
    seed.event("BROWSER", "Viewed Product", ago(3))
    seed.event("A", "Placed Order", ago(-1), 5000.0)  # after AS_OF
    return seed.commit()


def test_quintiles_never_split_ties() -> None:
    assert quintile_scores([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    # four customers share the lowest value: all score 1, and 2 stays empty
    assert quintile_scores([6, 1, 2, 4, 5, 1, 7, 3, 1, 1]) == [5, 1, 3, 4, 4, 1, 5, 3, 1, 1]
    # lower is better (recency): equal values share the score of the share strictly worse
    assert quintile_scores([1.0, 1.0, 9.0], higher_is_better=False) == [2, 2, 1]
    assert quintile_scores([]) == []


def test_scores_and_segments_of_each_customer(warehouse: Warehouse) -> None:
    seed_rfm(Seed(warehouse))
    result = rfm(warehouse, ACCOUNT, as_of=AS_OF)
    got = {r["profile_id"]: r for r in result.profiles.records()}
    assert set(got) == set(CUSTOMERS)
    assert {p: (r["recency_days"], r["frequency"], r["monetary"]) for p, r in got.items()} == {
        p: (float(days), orders, total) for p, (days, orders, total) in CUSTOMERS.items()
    }
    assert {p: (r["r"], r["f"], r["m"], r["segment"]) for p, r in got.items()} == {
        "A": (5, 5, 5, "Champions"),
        "B": (5, 1, 1, "New customers"),
        "C": (4, 3, 2, "Promising"),
        "D": (4, 4, 4, "Champions"),
        "E": (3, 4, 4, "Loyal"),
        "F": (3, 1, 2, "Needs attention"),
        "G": (2, 5, 5, "Can't lose them"),
        "H": (2, 3, 3, "At risk"),
        "I": (1, 1, 3, "Lost"),
        "J": (1, 1, 1, "Lost"),
    }


def test_segment_sizes_and_value(warehouse: Warehouse) -> None:
    seed_rfm(Seed(warehouse))
    result = rfm(warehouse, ACCOUNT, as_of=AS_OF)
    rows = {r["segment"]: r for r in result.segments.records()}
    assert list(rows) == [
        "Champions", "Can't lose them", "Loyal", "At risk", "New customers", "Promising",
        "Needs attention", "Hibernating", "Lost",
    ]  # fmt: skip
    assert {s: r["profiles"] for s, r in rows.items()} == {
        "Champions": 2, "Can't lose them": 1, "Loyal": 1, "At risk": 1, "New customers": 1,
        "Promising": 1, "Needs attention": 1, "Hibernating": 0, "Lost": 2,
    }  # fmt: skip
    champions = rows["Champions"]
    assert champions["revenue"] == 1300.0
    assert champions["revenue_share"] == round(1300 / 3225, 4)
    assert champions["average_value"] == 650.0
    assert champions["average_orders"] == 5.0
    assert champions["average_recency_days"] == 2.5
    assert champions["share"] == 0.2
    empty = rows["Hibernating"]
    assert (empty["revenue"], empty["average_value"], empty["average_orders"]) == (0.0, None, None)
    assert result.segments.notes["customers"] == 10
    assert result.segments.notes["revenue"] == 3225.0
    assert sum(r["profiles"] for r in rows.values()) == 10


def test_members_by_forgiving_name(warehouse: Warehouse) -> None:
    seed_rfm(Seed(warehouse))
    result = rfm(warehouse, ACCOUNT, as_of=AS_OF)
    assert result.members("Champions") == ["A", "D"]
    assert result.members("cant-lose_them") == ["G"]
    assert result.members("hibernating") == []
    with pytest.raises(AnalyticsError, match="no RFM segment 'VIP'; segments: Champions, "):
        result.members("VIP")


def test_custom_rules_and_the_rest_as_other(warehouse: Warehouse) -> None:
    seed_rfm(Seed(warehouse))
    result = rfm(warehouse, ACCOUNT, as_of=AS_OF, segments=[SegmentRule("Best", r_min=5)])
    sizes = {r["segment"]: r["profiles"] for r in result.segments.records()}
    assert sizes == {"Best": 2, "Other": 8}


def test_an_earlier_as_of_forgets_later_orders(warehouse: Warehouse) -> None:
    seed_rfm(Seed(warehouse))
    result = rfm(warehouse, ACCOUNT, as_of=ago(5))
    got = {r["profile_id"]: r for r in result.profiles.records()}
    # A's latest order (1 day before AS_OF) is after this as_of: 5 earlier orders remain
    assert got["A"]["frequency"] == 5
    assert got["A"]["recency_days"] == 10.0
    assert got["A"]["monetary"] == 50.0
    assert "B" not in got  # its only order came later


def test_value_falls_back_to_value_and_profiles_are_optional(warehouse: Warehouse) -> None:
    """The campaign shop has orders but no synced profiles; p2's first order carries only
    ``value``."""
    build("S").write(warehouse)
    result = rfm(warehouse, "S")
    got = {
        r["profile_id"]: (r["frequency"], r["monetary"], r["email"])
        for r in result.profiles.records()
    }
    assert got == {"p1": (2, 120.0, None), "p2": (2, 80.0, None), "p3": (1, 40.0, None)}
