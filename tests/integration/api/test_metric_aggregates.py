"""``client.metrics.query_metric_aggregates`` and its rows, against the emulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kbridge.api import Client
from kbridge.api.resources import aggregate_rows
from kbridge.api.validation import ValidationError

pytestmark = pytest.mark.integration


def _metric_id(client: Client, name: str) -> str:
    return next(m.id or "" for m in client.metrics.iter_metrics() if m["name"] == name)


def test_a_typed_aggregate_query_and_its_rows(client: Client) -> None:
    opened = _metric_id(client, "Opened Email")
    end = datetime(2026, 12, 1, tzinfo=UTC)
    start = end - timedelta(days=400)
    result = client.metrics.query_metric_aggregates(
        opened,
        measurements=["count", "unique"],
        start=start,
        end=end,
        interval="month",
        by=["$message"],
        timezone="UTC",
    )
    assert result.type == "metric-aggregate"
    dates = result["dates"]
    assert len(dates) == 14  # Oct 2025 (the start's month) … Nov 2026
    rows = aggregate_rows(result)
    assert rows, "no opens in 400 days"
    assert {tuple(r) for r in rows} == {
        ("date", "dimensions", "count", "unique")
    }  # every row has the same keys
    total = sum(int(r["count"]) for r in rows)
    assert total == sum(sum(row["measurements"]["count"]) for row in result["data"])
    assert all(r["unique"] <= r["count"] for r in rows)
    assert all(r["count"] > 0 for r in rows)  # empty buckets are not rows


def test_bad_arguments_are_refused_before_sending(client: Client) -> None:
    end = datetime(2026, 12, 1, tzinfo=UTC)
    with pytest.raises(ValidationError, match="measurements"):
        client.metrics.query_metric_aggregates(
            "x", measurements=["median"], start=end - timedelta(days=1), end=end
        )
    with pytest.raises(ValidationError, match="interval"):
        client.metrics.query_metric_aggregates(
            "x", measurements=["count"], start=end - timedelta(days=1), end=end, interval="year"
        )
    with pytest.raises(ValidationError, match="end"):
        client.metrics.query_metric_aggregates("x", measurements=["count"], start=end, end=end)
