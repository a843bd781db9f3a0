"""The campaign and attribution sections say where their figures came from."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from kbridge.report import SECTIONS, build_report
from kbridge.warehouse import Warehouse, open_warehouse
from tests.unit.analytics.campaign_shop import build
from tests.unit.analytics.test_sources import ORDERS, aggregates
from tests.unit.report.test_report_segments import section

pytestmark = pytest.mark.unit

MINE = tuple(s for s in SECTIONS if s.anchor in ("campaigns", "attribution"))
NOW = datetime(2024, 3, 10, tzinfo=UTC)


@pytest.fixture
def shop() -> Iterator[Warehouse]:
    wh = open_warehouse("duckdb:///:memory:")
    build("A").write(wh)
    yield wh
    wh.close()


def test_complete_events_are_said_to_be_checked(shop: Warehouse) -> None:
    aggregates(shop, ORDERS)
    html = build_report(shop, "A", generated_at=NOW, sections=MINE)
    campaigns = section(html, "campaigns")
    assert "Every figure is counted from the synced events, which hold every event" in campaigns
    assert "on the 4 day(s) they cover" in campaigns
    assert "<th>figures from</th>" in campaigns
    assert "<td>events</td>" in campaigns
    assert "that Klaviyo's daily aggregates count but" not in section(html, "attribution")


def test_partial_events_name_the_reports_and_the_missing_orders(shop: Warehouse) -> None:
    aggregates(shop, {**ORDERS, 1: (2, 150.0)})
    html = build_report(shop, "A", generated_at=NOW, sections=MINE)
    campaigns = section(html, "campaigns")
    assert "The synced events miss 1 event(s)" in campaigns
    assert "on 1 of 4 day(s): the figures of 2 message(s) come from Klaviyo" in campaigns
    assert "<td>report + events</td>" in campaigns
    assert "<td>report</td>" in campaigns
    attribution = section(html, "attribution")
    assert "<b>6</b><span>orders</span>" in attribution
    assert "include 1 order(s) worth 50.00 USD that Klaviyo's daily aggregates" in attribution


def test_without_aggregates_the_check_is_said_not_done(shop: Warehouse) -> None:
    shop.query("drop table metric_aggregates_daily")
    html = build_report(shop, "A", generated_at=NOW, sections=MINE)
    assert "(stream metric_aggregates_daily) were not synced" in section(html, "campaigns")
