"""``client.metrics``: the kinds of event the account records (Klaviyo tag *Metrics*)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any, Unpack
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kbridge.api.jsonapi import Resource
from kbridge.api.resources._base import ListQuery, Service, list_params, shared_args
from kbridge.api.validation import ValidationError, check_choice, iso

__all__ = [
    "AGGREGATE_INTERVALS",
    "MEASUREMENTS",
    "MetricsService",
    "aggregate_query",
    "aggregate_rows",
]

MEASUREMENTS = ("count", "sum_value", "unique")
AGGREGATE_INTERVALS = ("hour", "day", "week", "month")


def aggregate_rows(result: Resource) -> list[dict[str, Any]]:
    """A ``metric-aggregate`` as rows: one per dimension group and bucket with events.

    Each row is ``{"date", "dimensions", <measurement>: value, …}``; buckets
    where every measurement is zero are left out (Klaviyo lists every bucket).
    """
    dates = list(result.get("dates") or [])
    rows: list[dict[str, Any]] = []
    for group in result.get("data") or []:
        measurements: dict[str, list[Any]] = group.get("measurements") or {}
        for k, date in enumerate(dates):
            values = {name: series[k] for name, series in measurements.items()}
            if any(values.values()):
                rows.append(
                    {"date": date, "dimensions": list(group.get("dimensions") or [])} | values
                )
    return rows


def aggregate_query(
    metric_id: str,
    *,
    measurements: Sequence[str],
    start: datetime,
    end: datetime,
    interval: str = "day",
    by: Sequence[str] | None = None,
    filter: Sequence[str] | None = None,
    timezone: str = "UTC",
    sort: str | None = None,
    page_size: int | None = None,
    page_cursor: str | None = None,
) -> dict[str, Any]:
    """The validated ``query_metric_aggregates`` body (see the service method)."""
    if not metric_id:
        raise ValidationError("metric_id", "is required")
    if not measurements:
        raise ValidationError("measurements", "name at least one of count, sum_value, unique")
    for name in measurements:
        check_choice(name, MEASUREMENTS, "measurements")
    check_choice(interval, AGGREGATE_INTERVALS, "interval")
    iso(start, "start"), iso(end, "end")  # aware datetimes only
    if end <= start:
        raise ValidationError("end", "must be after start")
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError("timezone", f"{timezone!r} is not an IANA timezone") from None
    # the documented form: wall-clock time without an offset, read in ``timezone``
    start_text = start.astimezone(zone).replace(tzinfo=None).isoformat()
    end_text = end.astimezone(zone).replace(tzinfo=None).isoformat()
    attrs: dict[str, Any] = {
        "metric_id": metric_id,
        "measurements": list(measurements),
        "interval": interval,
        "timezone": timezone,
        "filter": [
            f"greater-or-equal(datetime,{start_text})",
            f"less-than(datetime,{end_text})",
            *(filter or ()),
        ],
    }
    if by:
        attrs["by"] = list(by)
    if sort:
        attrs["sort"] = sort
    if page_size is not None:
        attrs["page_size"] = page_size
    if page_cursor:
        attrs["page_cursor"] = page_cursor
    return {"data": {"type": "metric-aggregate", "attributes": attrs}}


#: the options of an aggregate query, one page or all as rows
_AGGREGATE_ARGS = """
    Args:
        measurements: count, sum_value, unique (repeatable)
        start: first instant counted (ISO 8601 with an offset)
        end: first instant not counted
        interval: hour, day, week or month
        by: event properties to group by, e.g. $message (repeatable)
        filter: more conditions, e.g. equals($message,"01H…") (repeatable)
        timezone: IANA name the buckets follow, e.g. America/New_York
"""


class MetricsService(Service):
    async def get_metrics(self, **query: Unpack[ListQuery]) -> list[Resource]:
        return await self._page("get_metrics", query)

    def iter_metrics(self, **query: Unpack[ListQuery]) -> AsyncIterator[Resource]:
        return self._all("get_metrics", query)

    async def get_metric(self, metric_id: str, **query: Unpack[ListQuery]) -> Resource:
        params = list_params("get_metric", **query)
        return await self._one("get_metric", path_params={"id": metric_id}, params=params)

    @shared_args(_AGGREGATE_ARGS)
    async def query_metric_aggregates(
        self,
        metric_id: str,
        *,
        measurements: Sequence[str],
        start: datetime,
        end: datetime,
        interval: str = "day",
        by: Sequence[str] | None = None,
        filter: Sequence[str] | None = None,
        timezone: str = "UTC",
        sort: str | None = None,
        page_size: int | None = None,
        page_cursor: str | None = None,
    ) -> Resource:
        """A metric's events aggregated per ``interval`` over ``[start, end)``.

        The answer's ``dates`` are the buckets' starts and each of its ``data``
        rows holds the ``dimensions`` (values of ``by``) and one series per
        measurement; :func:`aggregate_rows` flattens it.
        """
        body = aggregate_query(
            metric_id,
            measurements=measurements,
            start=start,
            end=end,
            interval=interval,
            by=by,
            filter=filter,
            timezone=timezone,
            sort=sort,
            page_size=page_size,
            page_cursor=page_cursor,
        )
        return await self._one("query_metric_aggregates", json=body)

    @shared_args(_AGGREGATE_ARGS)
    async def query_metric_aggregate_rows(
        self,
        metric_id: str,
        *,
        measurements: Sequence[str],
        start: datetime,
        end: datetime,
        interval: str = "day",
        by: Sequence[str] | None = None,
        filter: Sequence[str] | None = None,
        timezone: str = "UTC",
    ) -> list[Resource]:
        """:meth:`query_metric_aggregates` as rows (see :func:`aggregate_rows`), every page."""
        rows: list[Resource] = []
        cursor: str | None = None
        while True:
            body = aggregate_query(
                metric_id,
                measurements=measurements,
                start=start,
                end=end,
                interval=interval,
                by=by,
                filter=filter,
                timezone=timezone,
                page_cursor=cursor,
            )
            doc = await self._doc("query_metric_aggregates", json=body)
            if doc.first is not None:
                found = aggregate_rows(doc.first)
                rows += [Resource("metric-aggregate-row", None, row) for row in found]
            # more dimension groups than a page holds: the next page's cursor
            following = doc.meta.get("next_page_cursor")
            if not isinstance(following, str) or not following:
                return rows
            cursor = following
