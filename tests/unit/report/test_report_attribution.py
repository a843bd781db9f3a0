"""The attribution section charts campaigns and flows on their own scale."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from kbridge.report import SECTIONS, build_report
from kbridge.warehouse import open_warehouse
from tests.unit.analytics.campaign_shop import DAY, build

pytestmark = pytest.mark.unit

ATTRIBUTION = tuple(s for s in SECTIONS if s.anchor == "attribution")
NOW = datetime(2024, 3, 10, tzinfo=UTC)


def test_unattributed_revenue_is_stated_apart_so_campaign_bars_use_the_scale() -> None:
    shop = build("A")
    # a large order no message touched: most revenue is unattributed, as in most accounts
    shop.event("Placed Order", "p4", 6 * DAY, **{"$value": 5000.0})
    wh = open_warehouse("duckdb:///:memory:")
    try:
        shop.write(wh)
        html = build_report(wh, "A", generated_at=NOW, sections=ATTRIBUTION)
    finally:
        wh.close()
    chart = html.split("<h3>Revenue by campaign and flow</h3>", 1)[1].split("</svg>", 1)[0]
    assert "unattributed" not in chart
    widths = [float(w) for w in re.findall(r'<rect x="220" y="\d+" width="([\d.]+)"', chart)]
    assert len(widths) == 3  # M1, M2, FM1
    assert max(widths) == 410.0  # the best campaign spans the chart, not a 1 px sliver
    assert "Not charted: 5,050.00 USD of revenue (96.4 %) followed no message" in html
