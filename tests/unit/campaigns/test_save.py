"""Saving a performance report: one row per campaign message, the latest snapshot wins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kbridge.campaigns import MessagePerformance, PerformanceReport, save_performance
from kbridge.warehouse import open_warehouse

pytestmark = pytest.mark.unit

START = datetime(2026, 3, 1, tzinfo=UTC)


def report(opens: int, revenue: float) -> PerformanceReport:
    row = MessagePerformance(
        "C1", "M1", "email",
        {"recipients": 10, "delivered": 10, "opens": opens, "open_rate": 0.25,
         "conversion_value": revenue},
    )  # fmt: skip
    return PerformanceReport("ACC", START, START + timedelta(days=30), "Placed Order", "PO", (row,))


def test_save_upserts_the_latest_snapshot(tmp_path: Path) -> None:
    wh = open_warehouse(f"duckdb:///{tmp_path / 'wh.duckdb'}")
    try:
        assert save_performance(wh, report(3, 12.5), fetched_at=START) == 1
        later = START + timedelta(days=1)
        assert save_performance(wh, report(5, 20.0), fetched_at=later) == 1
        rows = wh.query(
            "select account_id, campaign_id, recipients, opens, open_rate, conversion_value, "
            "clicks, conversion_metric_id from campaign_performance"
        )
    finally:
        wh.close()
    # statistics Klaviyo left out are stored as 0, like the report's own zero counts
    assert [tuple(r) for r in rows] == [("ACC", "C1", 10, 5, 0.25, 20.0, 0, "PO")]
