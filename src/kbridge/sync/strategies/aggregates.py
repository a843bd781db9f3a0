"""Metric-aggregate streams: each metric's events per UTC day from ``query_metric_aggregates``.

A run reads the complete UTC days after the bookmark (from the start date, else
``default_backfill_days`` back, on a first run) plus the lookback's days before
them, whose figures late events may still change: one request per metric and
``days_per_request`` days, every day a row (zeros included), so a day's row is
replaced whole when it is read again. The bookmark ("complete through this
day") moves once every metric's rows for the run are committed; a run stopped
half way reads the same days again next time, and the upserts make that harmless.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from kbridge.api.resources.metrics import aggregate_query
from kbridge.sync.context import Context
from kbridge.sync.records import Bookmark
from kbridge.sync.results import StreamResult
from kbridge.sync.state import format_ts, parse_ts
from kbridge.sync.streams import Aggregates, Stream
from kbridge.warehouse import Batch

__all__ = ["MetricAggregates", "aggregate_day_rows"]

_DAY = timedelta(days=1)


def _midnight(dt: datetime) -> datetime:
    return dt.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _plan(
    ctx: Context, stream: Stream, spec: Aggregates, bookmark: str | None
) -> tuple[datetime, datetime, datetime]:
    """``(again, first, end)``: re-read from ``again``, new days ``[first, end)``."""
    end = _midnight(ctx.clock.now())
    if bookmark and not ctx.options.full_refresh:
        first = _midnight(parse_ts(bookmark)) + _DAY
        days = -(-ctx.options.lookback_for(stream) // _DAY)  # whole days, rounded up
        again = first - days * _DAY
    elif ctx.options.start_date is not None:
        first = again = _midnight(ctx.options.start_date)
    else:
        first = again = end - spec.default_backfill_days * _DAY
    if ctx.options.start_date is not None:
        again = max(again, _midnight(ctx.options.start_date))
    return min(again, first), first, end


def aggregate_day_rows(
    account_id: str, metric_id: str, metric_name: str, attributes: Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    """One row per day of a ``metric-aggregate`` answer (no ``by``: a single group)."""
    groups = attributes.get("data") or [{}]
    measurements: dict[str, Any] = groups[0].get("measurements") or {}

    def at(name: str, k: int) -> Any:
        series = measurements.get(name)
        return series[k] if isinstance(series, list) and k < len(series) else None

    rows: list[tuple[Any, ...]] = []
    for k, date in enumerate(attributes.get("dates") or ()):
        day = format_ts(_midnight(parse_ts(str(date))))
        count, total, unique = at("count", k), at("sum_value", k), at("unique", k)
        rows.append(
            (
                account_id,
                day,
                metric_id,
                metric_name,
                None if count is None else int(count),
                None if total is None else float(total),
                None if unique is None else int(unique),
            )
        )
    return rows


class MetricAggregates:
    """Every metric's daily count, value sum and unique profiles."""

    async def sync(self, ctx: Context, stream: Stream, result: StreamResult) -> None:
        spec = stream.aggregates
        assert spec is not None
        states = await ctx.writer.load_state(ctx.account_id, stream.name)
        state = states.bookmark()
        again, first, end = _plan(ctx, stream, spec, state.bookmark if state else None)
        if first >= end:
            return
        metrics: list[tuple[str, str]] = []
        params = {"fields[metric]": "name"}
        async for page in ctx.client.iter_pages("get_metrics", params=params):
            metrics += [(r.id or "", str(r.attributes.get("name") or "")) for r in page.resources]
        span = spec.days_per_request * _DAY
        new_from = first.date().isoformat()
        for n, (metric_id, name) in enumerate(metrics, 1):
            rows: list[tuple[Any, ...]] = []
            start = again
            while start < end:
                stop = min(start + span, end)
                body = aggregate_query(
                    metric_id,
                    measurements=spec.measurements,
                    start=start,
                    end=stop,
                    interval="day",
                    timezone="UTC",
                )
                doc = await ctx.client.get_document(stream.operation_id, json=body, idempotent=True)
                found = doc.first.attributes if doc.first is not None else {}
                rows += aggregate_day_rows(ctx.account_id, metric_id, name, found)
                ctx.progress(stream, result, 0, 1)
                start = stop
            batch = Batch(ctx.account_id).upsert(stream.table, rows)
            if n == len(metrics):
                batch.state.append(states.update("", Bookmark(format_ts(end - _DAY))))
            await ctx.writer.commit(batch)
            ctx.progress(stream, result, len(rows), 0)
            result.reread += sum(1 for row in rows if str(row[1])[:10] < new_from)
