"""How campaigns did, from Klaviyo's reporting API, and a snapshot of it in the warehouse.

One ``campaign-values-report`` over ``[since, until)`` grouped by campaign,
message and channel gives recipients, opens, clicks, conversions, revenue
and unsubscribes per campaign message (reports cost 2 requests a minute and
225 a day, so this is one request whatever the number of campaigns).

Saved rows go to a table of their own, ``campaign_performance``: one row per
campaign message holding the latest snapshot and the window it covers. The
sync's ``campaign_values_daily`` holds *per-day* figures built from one
report per day; a window total written there would be read as one day's
numbers, and the campaigns workflow may not import the sync layer anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kbridge.api import AsyncClient, capabilities
from kbridge.api.filter_builder import F
from kbridge.api.validation import ValidationError
from kbridge.campaigns._common import explained
from kbridge.core import Clock, SystemClock, dumps_str
from kbridge.core.clock import utc
from kbridge.warehouse import Batch, Warehouse, table

__all__ = [
    "CAMPAIGN_PERFORMANCE",
    "DEFAULT_WINDOW_DAYS",
    "PERFORMANCE_OPERATIONS",
    "STATISTICS",
    "MessagePerformance",
    "PerformanceReport",
    "campaign_performance",
    "save_performance",
]

#: asked of the reporting API, in this order (rates are unique profiles over delivered)
STATISTICS = (
    "recipients",
    "delivered",
    "opens",
    "opens_unique",
    "open_rate",
    "clicks",
    "clicks_unique",
    "click_rate",
    "conversions",
    "conversion_value",
    "unsubscribes",
)
_DOUBLE = frozenset({"open_rate", "click_rate", "conversion_value"})
PERFORMANCE_OPERATIONS = capabilities.CAMPAIGN_PERFORMANCE.operations
DEFAULT_WINDOW_DAYS = 30
#: Klaviyo refuses report timeframes longer than a year
MAX_WINDOW = timedelta(days=365)

CAMPAIGN_PERFORMANCE = table(
    "campaign_performance",
    [
        "campaign_id",
        "campaign_message_id",
        "send_channel",
        ("window_start", "timestamp"),
        ("window_end", "timestamp"),
        "conversion_metric_id",
        ("fetched_at", "timestamp"),
        *[(name, "double" if name in _DOUBLE else "bigint") for name in STATISTICS],
        ("statistics", "json"),
    ],
    key=("campaign_id", "campaign_message_id", "send_channel"),
)


@dataclass(frozen=True, slots=True)
class MessagePerformance:
    """One campaign message's figures over the report window."""

    campaign_id: str
    campaign_message_id: str
    send_channel: str
    statistics: dict[str, float | int]

    def get(self, name: str) -> float | int:
        """A statistic (0 when Klaviyo left it out)."""
        return self.statistics.get(name, 0)

    def as_json(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "campaign_message_id": self.campaign_message_id,
            "send_channel": self.send_channel,
            **{name: self.get(name) for name in STATISTICS},
        }


@dataclass(frozen=True, slots=True)
class PerformanceReport:
    """The rows of one report and what it covered."""

    account_id: str
    start: datetime
    end: datetime
    conversion_metric: str
    conversion_metric_id: str
    rows: tuple[MessagePerformance, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "since": _ts(self.start),
            "until": _ts(self.end),
            "conversion_metric": self.conversion_metric,
            "campaigns": [r.as_json() for r in self.rows],
        }


def _ts(dt: datetime) -> str:
    return dt.astimezone(UTC).replace(microsecond=0).isoformat()


def _local(dt: datetime, zone: ZoneInfo) -> str:
    return dt.astimezone(zone).replace(microsecond=0).isoformat()


async def _metric_id(client: AsyncClient, name: str) -> str:
    async for metric in client.metrics.iter_metrics(fields={"metric": ["name"]}):
        if metric.attributes.get("name") == name and metric.id:
            return metric.id
    raise ValidationError(
        "conversion_metric", f"the account has no metric named {name!r} (e.g. 'Placed Order')"
    )


async def _account(client: AsyncClient) -> tuple[str, ZoneInfo]:
    """The key's account id and timezone (Klaviyo reads report times in that timezone)."""
    doc = await client.get_document("get_accounts")
    if doc.first is None or not doc.first.id:
        raise ValidationError("account", "the key's account could not be read")
    name = str(doc.first.attributes.get("timezone") or "UTC")
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return doc.first.id, zone


def _window(
    since: datetime | None, until: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    # a day past now: our clock may lag Klaviyo's, and the future holds no events anyway
    end = utc(until) if until is not None else now + timedelta(days=1)
    start = utc(since) if since is not None else now - timedelta(days=DEFAULT_WINDOW_DAYS)
    if end <= start:
        raise ValidationError("since", "must be before the end of the window")
    if end - start > MAX_WINDOW:
        raise ValidationError(
            "since", "Klaviyo reports cover at most 365 days; give a later --since"
        )
    return start, end


async def campaign_performance(
    client: AsyncClient,
    campaign_ids: Sequence[str] = (),
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    conversion_metric: str = "Placed Order",
    clock: Clock | None = None,
) -> PerformanceReport:
    """Figures per campaign message (only ``campaign_ids`` when given) over ``[since, until)``.

    ``since`` defaults to 30 days ago, ``until`` to a day from now.
    """
    now = (clock or SystemClock()).now()
    start, end = _window(since, until, now)
    with explained("read campaign performance", capabilities.CAMPAIGN_PERFORMANCE):
        account_id, zone = await _account(client)
        metric_id = await _metric_id(client, conversion_metric)
        ids = list(dict.fromkeys(campaign_ids))
        where: str | None = None
        if len(ids) == 1:
            where = str(F.equals("campaign_id", ids[0]))
        elif ids:
            where = str(F.contains_any("campaign_id", ids))
        report = await client.reporting.query_campaign_values(
            statistics=STATISTICS,
            conversion_metric_id=metric_id,
            # Klaviyo ignores the offset and reads the wall-clock time in the account's
            # timezone: say the instant in that timezone so it means what we mean
            timeframe={"start": _local(start, zone), "end": _local(end, zone)},
            group_by=("campaign_id", "campaign_message_id", "send_channel"),
            filter=where,
        )
    rows = []
    for item in report.attributes.get("results") or ():
        groupings = item.get("groupings") or {}
        rows.append(
            MessagePerformance(
                campaign_id=str(groupings.get("campaign_id") or ""),
                campaign_message_id=str(groupings.get("campaign_message_id") or ""),
                send_channel=str(groupings.get("send_channel") or ""),
                statistics=dict(item.get("statistics") or {}),
            )
        )
    rows.sort(key=lambda r: (r.campaign_id, r.campaign_message_id, r.send_channel))
    return PerformanceReport(account_id, start, end, conversion_metric, metric_id, tuple(rows))


def save_performance(
    warehouse: Warehouse, report: PerformanceReport, *, fetched_at: datetime
) -> int:
    """Upsert ``report`` into ``campaign_performance`` (created if missing); rows written."""
    warehouse.migrate([CAMPAIGN_PERFORMANCE])
    rows = []
    for r in report.rows:
        figures = [float(r.get(n)) if n in _DOUBLE else round(float(r.get(n))) for n in STATISTICS]
        rows.append(
            (
                report.account_id,
                r.campaign_id,
                r.campaign_message_id,
                r.send_channel,
                _ts(report.start),
                _ts(report.end),
                report.conversion_metric_id,
                _ts(fetched_at),
                *figures,
                dumps_str(r.statistics),
            )
        )
    warehouse.commit(Batch(report.account_id).upsert(CAMPAIGN_PERFORMANCE, rows))
    return len(rows)
