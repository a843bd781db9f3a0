from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from kbridge.analytics.attribution import Windows, attribution
from kbridge.analytics.campaigns import campaign_performance
from kbridge.warehouse import Warehouse, open_warehouse
from tests.unit.analytics.campaign_shop import D0, DAY, build

pytestmark = pytest.mark.unit


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Warehouse]:
    wh = open_warehouse(f"duckdb:///{tmp_path / 'shop.duckdb'}")
    build("A").write(wh)
    build("OTHER").write(wh)  # a second account in the same warehouse never leaks in
    try:
        yield wh
    finally:
        wh.close()


def by_message(wh: Warehouse, **kwargs: object) -> dict[str, dict[str, object]]:
    frame = campaign_performance(wh, "A", **kwargs).messages  # type: ignore[arg-type]
    return {r["message_id"]: r for r in frame.records()}


def test_message_performance_counts_rates_and_last_touch_revenue(shop: Warehouse) -> None:
    perf = campaign_performance(shop, "A")
    assert perf.messages.column("message_id") == ["M1", "M2", "FM1"]  # most revenue first
    m1, m2, fm1 = perf.messages.records()
    assert m1 == {
        "source": "campaign",
        "parent_id": "C1",
        "name": "Spring sale",
        "message_id": "M1",
        "message": "Spring email",
        "channel": "email",
        "first_sent": "2024-03-01",
        "recipients": 4,
        "delivered": 3,
        "open_rate": 1.0,
        "click_rate": 0.3333,
        "conversions": 2,
        "conversion_rate": 0.6667,
        "revenue": 140.0,
        "revenue_per_recipient": 46.6667,
        "unsubscribes": 1,
        "unsubscribe_rate": 0.3333,
        "figures_from": "events",  # no aggregates synced: nothing says the events are partial
    }
    assert (m2["channel"], m2["delivered"], m2["click_rate"], m2["open_rate"]) == (
        "sms",
        2,
        1.0,
        0.0,
    )
    assert (m2["conversions"], m2["revenue"], m2["revenue_per_recipient"]) == (1, 30.0, 15.0)
    assert (fm1["source"], fm1["parent_id"], fm1["name"], fm1["message"]) == (
        "flow",
        "F1",
        "Welcome",
        "Welcome 1",
    )
    assert (fm1["delivered"], fm1["open_rate"], fm1["conversions"], fm1["revenue"]) == (
        1,
        1.0,
        1,
        20.0,
    )
    assert perf.messages.notes["revenue"] == 190.0


def test_attribution_per_campaign_and_flow_with_unattributed_totals(shop: Warehouse) -> None:
    frame = attribution(shop, "A")
    rows = [(r[0], r[1], r[2], r[3], r[4], r[6], r[7]) for r in frame]
    assert rows == [
        ("campaign", "C1", "Spring sale", "email", 2, 140.0, 0.5833),
        ("campaign", "C2", "Flash SMS", "sms", 1, 30.0, 0.125),
        ("flow", "F1", "Welcome", "email", 1, 20.0, 0.0833),
    ]
    n = frame.notes
    assert (n["conversions"], n["attributed_conversions"], n["unattributed_conversions"]) == (
        5,
        4,
        1,
    )
    assert (n["revenue"], n["attributed_revenue"], n["unattributed_revenue"]) == (
        240.0,
        190.0,
        50.0,
    )
    assert n["by_touch"] == {"email open": 3, "sms click": 1}
    # Klaviyo stamped two orders: o5 → M1 (we agree), o3 → M2 (its SMS click is 25 h old)
    assert (n["klaviyo_stamped_conversions"], n["klaviyo_agreement"]) == (2, 0.5)


def test_longer_windows_change_the_answer(shop: Warehouse) -> None:
    # a 7-day open window reaches o3's open (6 days before); the newer SMS click stays expired
    frame = attribution(shop, "A", windows=Windows(email_open=timedelta(days=7)))
    assert frame.records()[0]["conversions"] == 3
    assert frame.notes["unattributed_conversions"] == 0
    # a 2-day SMS window makes p3's 25-hour-old SMS click the last touch of o5 instead of M1
    frame = attribution(shop, "A", windows=Windows(sms_click=timedelta(days=2)))
    assert {r["id"]: r["conversions"] for r in frame.records()} == {"C1": 1, "C2": 3, "F1": 1}


def test_as_of_and_since_bound_the_period(shop: Warehouse) -> None:
    early = by_message(shop, as_of=D0 + timedelta(seconds=DAY + 1))
    assert set(early) == {"M1"}
    assert (early["M1"]["conversions"], early["M1"]["revenue"]) == (1, 100.0)
    late = by_message(shop, since=D0 + timedelta(days=2))
    assert late["M1"]["delivered"] == 0  # sent before `since`; its open still attributes o5
    assert (late["M1"]["conversions"], late["M1"]["revenue"]) == (1, 40.0)
    assert late["M1"]["open_rate"] is None


def test_reconciliation_shows_events_report_and_difference(shop: Warehouse) -> None:
    rec = campaign_performance(shop, "A").reconciliation
    got = {(r[0], r[1], r[3]): (r[4], r[5], r[6]) for r in rec}
    assert got[("campaign", "M1", "recipients")] == (4, 4, 0)
    assert got[("campaign", "M1", "opens")] == (4, 4, 0)
    assert got[("campaign", "M1", "opens_unique")] == (3, 3, 0)
    assert got[("campaign", "M1", "unsubscribes")] == (1, 1, 0)
    assert got[("campaign", "M1", "conversions")] == (1, 2, -1)
    assert got[("campaign", "M1", "conversion_value")] == (100.0, 150.0, -50.0)
    assert got[("flow", "FM1", "conversion_value")] == (20.0, 20.0, 0)
    assert not any(k[1] == "M2" for k in got)  # no report covers its days
    assert rec.notes["days"] == {"campaign": 2, "flow": 1}
    assert rec.notes["totals"]["campaign"]["conversions.report"] == 2


def test_an_empty_or_unsynced_warehouse_gives_empty_frames(tmp_path: Path) -> None:
    wh = open_warehouse(f"duckdb:///{tmp_path / 'empty.duckdb'}")
    try:
        perf = campaign_performance(wh, "A")
        assert len(perf.messages) == 0
        assert len(perf.reconciliation) == 0
        frame = attribution(wh, "A")
        assert len(frame) == 0
        assert frame.notes["conversions"] == 0
    finally:
        wh.close()


def test_one_read_of_the_catalogue_and_of_the_events(shop: Warehouse) -> None:
    # each read costs a catalogue query or a scan with JSON extraction of every event: the
    # MCP tool's latency ceiling (#24) is met by reading each once; DuckDB's own query log
    # counts them
    shop.query("CALL enable_logging('QueryLog')")
    campaign_performance(shop, "A", since=D0 + timedelta(days=1))
    logged = [
        str(m).lower()
        for (m,) in shop.query("select message from duckdb_logs where type = 'QueryLog'")
    ]
    shop.query("CALL disable_logging()")
    assert sum("information_schema" in m for m in logged) == 1
    assert sum("from events" in m for m in logged) == 1


def test_without_reconciliation_the_same_messages_and_no_report_read(shop: Warehouse) -> None:
    full = campaign_performance(shop, "A")
    shop.query("CALL enable_logging('QueryLog')")
    lean = campaign_performance(shop, "A", reconcile=False)
    logged = [
        str(m).lower()
        for (m,) in shop.query("select message from duckdb_logs where type = 'QueryLog'")
    ]
    shop.query("CALL disable_logging()")
    assert lean.messages.records() == full.messages.records()
    coverage = lean.messages.notes.pop("events_coverage")
    assert coverage == {"checked": False, "why": "not read (reconcile=False)"}
    full.messages.notes.pop("events_coverage")
    assert lean.messages.notes == full.messages.notes
    assert full.reconciliation.records()
    assert not lean.reconciliation.records()
    assert not any("_daily" in m for m in logged)
