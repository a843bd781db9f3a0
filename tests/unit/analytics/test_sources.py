"""Which source each campaign figure comes from: synced events, or Klaviyo's own daily
aggregates and per-message reports when the events fall short of them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kbridge.analytics.attribution import attribution
from kbridge.analytics.campaigns import campaign_performance
from kbridge.warehouse import Batch, Warehouse, open_warehouse
from tests.unit.analytics.campaign_shop import DAY, TABLES, build, iso, row

pytestmark = pytest.mark.unit

#: the shop's orders per day: (count, value) as its events hold them
ORDERS = {1: (1, 100.0), 2: (1, 20.0), 5: (2, 70.0), 6: (1, 50.0)}


def aggregates(wh: Warehouse, days: dict[int, tuple[int, float]], account: str = "A") -> None:
    """Klaviyo's daily Placed Order counts (``metric_aggregates_daily``)."""
    rows = [
        row(
            "metric_aggregates_daily",
            account,
            day=iso(d * DAY),
            metric_id="mPO",
            metric_name="Placed Order",
            count=n,
            sum_value=v,
            unique_profiles=n,
        )
        for d, (n, v) in days.items()
    ]
    wh.commit(Batch(account).upsert(TABLES["metric_aggregates_daily"], rows))


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Warehouse]:
    wh = open_warehouse(f"duckdb:///{tmp_path / 'shop.duckdb'}")
    build("A").write(wh)
    try:
        yield wh
    finally:
        wh.close()


def test_complete_events_are_the_source(shop: Warehouse) -> None:
    aggregates(shop, ORDERS)
    frame = attribution(shop, "A")
    n = frame.notes
    assert (n["conversions"], n["revenue"], n["totals_from"]) == (5, 240.0, "events")
    assert n["events_coverage"] == {
        "checked": True,
        "days_checked": 4,
        "days_short": 0,
        "events_missing": {},
    }
    perf = campaign_performance(shop, "A")
    assert set(perf.messages.column("figures_from")) == {"events"}
    assert perf.messages.notes["figures_from"] == {"events": 3}


def test_attribution_totals_count_the_orders_the_events_miss(shop: Warehouse) -> None:
    # Klaviyo counted two orders on day 1 (150 in all); the synced events hold one (100)
    aggregates(shop, {**ORDERS, 1: (2, 150.0)})
    frame = attribution(shop, "A")
    n = frame.notes
    assert (n["conversions"], n["attributed_conversions"], n["unattributed_conversions"]) == (
        6,
        4,
        2,
    )
    assert (n["revenue"], n["attributed_revenue"], n["unattributed_revenue"]) == (
        290.0,
        190.0,
        100.0,
    )
    assert n["totals_from"] == "events + metric_aggregates_daily"
    assert n["events_missing"] == {"conversions": 1, "revenue": 50.0}
    assert n["events_coverage"]["days_short"] == 1
    # shares are of every order's revenue, the missing ones too
    assert {r["id"]: r["revenue_share"] for r in frame.records()}["C1"] == round(140 / 290, 4)


def test_partial_events_take_message_figures_from_the_reports(shop: Warehouse) -> None:
    aggregates(shop, {**ORDERS, 1: (2, 150.0)})
    perf = campaign_performance(shop, "A")
    rows = {r["message_id"]: r for r in perf.messages.records()}
    assert list(rows) == ["M1", "M2", "FM1"]
    m1 = rows["M1"]
    # the report's days (0 and 1: 2 conversions, 150) and the events' day 5 (1, 40)
    assert m1["figures_from"] == "report + events"
    assert (m1["recipients"], m1["delivered"], m1["open_rate"], m1["click_rate"]) == (
        4,
        3,
        1.0,
        0.3333,
    )
    assert (m1["conversions"], m1["revenue"], m1["revenue_per_recipient"]) == (3, 190.0, 63.3333)
    assert (m1["first_sent"], m1["unsubscribes"]) == ("2024-03-01", 1)
    assert rows["FM1"]["figures_from"] == "report"  # its report covers all its events' days
    assert (rows["FM1"]["conversions"], rows["FM1"]["revenue"]) == (1, 20.0)
    assert rows["M2"]["figures_from"] == "events"  # no report covers it
    assert perf.messages.notes["figures_from"] == {"events": 1, "report": 1, "report + events": 1}
    assert perf.messages.notes["events_coverage"]["events_missing"] == {"Placed Order": 1}
    # the reconciliation is unchanged: events against reports, day by day
    rec = {(r[1], r[3]): r[4:] for r in perf.reconciliation}
    assert rec[("M1", "conversion_value")] == (100.0, 150.0, -50.0)


def test_without_aggregates_nothing_is_checked(shop: Warehouse) -> None:
    shop.query("drop table metric_aggregates_daily")
    n = attribution(shop, "A").notes
    assert n["totals_from"] == "events"
    assert n["events_coverage"] == {
        "checked": False,
        "why": "metric_aggregates_daily was not synced",
    }
