"""``client.reporting``: campaign and flow performance values (tag *Reporting*).

Reports are expensive for Klaviyo (2/min, 225/day): the limiter paces them,
and a spent daily cap raises ``QuotaExhaustedError`` instead of looping.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from kbridge.api.jsonapi import Resource
from kbridge.api.resources._base import Service, shared_args
from kbridge.api.validation import ValidationError, check_choice, iso

__all__ = ["TIMEFRAME_KEYS", "ReportingService", "timeframe"]

TIMEFRAME_KEYS = (
    "today",
    "yesterday",
    "this_week",
    "last_week",
    "this_month",
    "last_month",
    "this_year",
    "last_year",
    "last_7_days",
    "last_30_days",
    "last_90_days",
    "last_3_months",
    "last_12_months",
    "last_365_days",
)


def timeframe(
    key: str | None = None, *, start: datetime | None = None, end: datetime | None = None
) -> dict[str, Any]:
    """``{"key": …}`` or ``{"start", "end"}`` — exactly one form."""
    if key is not None:
        if start is not None or end is not None:
            raise ValidationError("timeframe", "give a key or start/end, not both")
        return {"key": check_choice(key, TIMEFRAME_KEYS, "timeframe")}
    if start is None or end is None:
        raise ValidationError("timeframe", "give a key (e.g. last_30_days) or both start and end")
    start_text, end_text = iso(start, "start"), iso(end, "end")
    if end <= start:
        raise ValidationError("end", "must be after start")
    return {"start": start_text, "end": end_text}


#: the options of a values report, campaign or flow
_VALUES_ARGS = """
    Args:
        statistics: e.g. opens, clicks (repeatable)
        conversion_metric_id: metric counted as a conversion
        group_by: grouping (repeatable)
        filter: Klaviyo filter on the values, e.g. equals(send_channel,'email')
"""


class ReportingService(Service):
    @shared_args(_VALUES_ARGS)
    async def query_campaign_values(
        self,
        *,
        statistics: Sequence[str],
        conversion_metric_id: str,
        timeframe: dict[str, Any],
        group_by: Sequence[str] | None = None,
        filter: str | None = None,
    ) -> Resource:
        """Campaign performance values (``attributes.results``) over ``timeframe``."""
        return await self._report(
            "query_campaign_values",
            "campaign-values-report",
            statistics,
            conversion_metric_id,
            timeframe,
            group_by,
            filter,
        )

    @shared_args(_VALUES_ARGS)
    async def query_flow_values(
        self,
        *,
        statistics: Sequence[str],
        conversion_metric_id: str,
        timeframe: dict[str, Any],
        group_by: Sequence[str] | None = None,
        filter: str | None = None,
    ) -> Resource:
        """Flow performance values (``attributes.results``) over ``timeframe``."""
        return await self._report(
            "query_flow_values",
            "flow-values-report",
            statistics,
            conversion_metric_id,
            timeframe,
            group_by,
            filter,
        )

    async def _report(
        self,
        operation_id: str,
        rtype: str,
        statistics: Sequence[str],
        conversion_metric_id: str,
        frame: dict[str, Any],
        group_by: Sequence[str] | None,
        filter: str | None,
    ) -> Resource:
        if not statistics:
            raise ValidationError("statistics", "name at least one statistic (e.g. opens)")
        if not conversion_metric_id:
            raise ValidationError("conversion_metric_id", "is required for values reports")
        attrs: dict[str, Any] = {
            "statistics": list(statistics),
            "conversion_metric_id": conversion_metric_id,
            "timeframe": frame,
        }
        if group_by:
            attrs["group_by"] = list(group_by)
        if filter:
            attrs["filter"] = filter
        return await self._one(operation_id, json={"data": {"type": rtype, "attributes": attrs}})
