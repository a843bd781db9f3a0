"""Campaign and flow message performance, from events, checked against Klaviyo's reports.

For every campaign message and flow message (``$message`` on its events):

* **recipients** = delivered (Received Email / Received SMS) + bounced (Bounced Email);
* **open rate**, **click rate**, **unsubscribe rate**, **conversion rate**: unique
  profiles who opened / clicked / unsubscribed / converted, divided by delivered
  (Klaviyo's definitions);
* **conversions** and **revenue**: conversions attributed to the message by last
  touch (:mod:`kbridge.analytics.attribution`); **revenue per recipient** =
  revenue / delivered.

The sync also stores Klaviyo's own daily figures (``campaign_values_daily``,
``flow_series_daily``). :func:`campaign_performance` recounts the same figures
from events for exactly the days those tables cover and shows both and the
difference, message by message: a large difference means missing events (a
partial sync) or a different attribution setting in the account.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kbridge.analytics._messages import (
    CHANNEL_OF,
    MessageEvent,
    MessageInfo,
    load_events,
    load_messages,
)
from kbridge.analytics._sql import seconds, table_names
from kbridge.analytics.attribution import TOUCH_METRICS, Windows, attribute
from kbridge.analytics.frame import Frame
from kbridge.warehouse import Warehouse

__all__ = [
    "MESSAGE_COLUMNS",
    "RECONCILED_STATISTICS",
    "CampaignPerformance",
    "campaign_performance",
]

_DAY = 86400
MESSAGE_COLUMNS = (
    "source",
    "parent_id",
    "name",
    "message_id",
    "message",
    "channel",
    "first_sent",
    "recipients",
    "delivered",
    "open_rate",
    "click_rate",
    "conversions",
    "conversion_rate",
    "revenue",
    "revenue_per_recipient",
    "unsubscribes",
    "unsubscribe_rate",
)
#: statistics recounted from events and compared with the stored reports
RECONCILED_STATISTICS = (
    "recipients",
    "delivered",
    "opens",
    "opens_unique",
    "clicks",
    "clicks_unique",
    "unsubscribes",
    "conversions",
    "conversion_value",
)
_STAT_OF = {
    "Received Email": "delivered",
    "Received SMS": "delivered",
    "Bounced Email": "bounced",
    "Opened Email": "opens",
    "Clicked Email": "clicks",
    "Clicked SMS": "clicks",
    "Unsubscribed": "unsubscribes",
}


@dataclass(frozen=True, slots=True)
class CampaignPerformance:
    """``messages``: one row per message, most revenue first; ``reconciliation``:
    events vs the stored reports, one row per message and statistic."""

    messages: Frame
    reconciliation: Frame


@dataclass(slots=True)
class _Tally:
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    people: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    value: float = 0.0
    first: int | None = None

    def count(self, stat: str, profile: str) -> None:
        self.counts[stat] += 1
        self.people[stat].add(profile)

    def figure(self, stat: str) -> float:
        if stat == "recipients":
            return self.counts["delivered"] + self.counts["bounced"]
        if stat == "conversion_value":
            return round(self.value, 2)
        if stat.endswith("_unique"):
            return len(self.people[stat.removesuffix("_unique")])
        return self.counts[stat]


def _key(e: MessageEvent) -> tuple[str, str]:
    return ("flow" if e.flow_id else "campaign", str(e.message_id))


def _rate(n: float, d: float) -> float | None:
    return round(n / d, 4) if d else None


def _day_iso(ts: int | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).date().isoformat()


def _describe(
    source: str, mid: str, flow_id: str | None, info: MessageInfo | None, channel: str
) -> tuple[str, str, str, str]:
    """(parent id, parent name, message name, channel) for display."""
    if info is not None:
        return info.parent_id, info.parent_name, info.name, info.channel
    if source == "flow":
        return flow_id or "", f"flow {flow_id}", mid, channel
    return "", f"unknown message {mid}", mid, channel


def campaign_performance(
    warehouse: Warehouse,
    account_id: str,
    *,
    since: datetime | None = None,
    as_of: datetime | None = None,
    conversion_metric: str = "Placed Order",
    windows: Windows | None = None,
    reconcile: bool = True,
) -> CampaignPerformance:
    """Per campaign and flow message performance in ``[since, as_of)`` (all time by default),
    and its reconciliation with the stored reports (left empty when not ``reconcile``)."""
    windows = windows or Windows()
    start, end = seconds(since), seconds(as_of)
    lookback = None if start is None else start - windows.longest
    metrics = set(_STAT_OF) | set(TOUCH_METRICS)
    tables = table_names(warehouse)
    # the per-day tallies serve only the reconciliation, and only for stored reports
    reports = tables if reconcile else frozenset()
    per_day = {source for source, table, _ in _REPORTS if table in reports}
    # one read of the events for the touches and the conversions: each read of ``events``
    # costs a scan and a JSON extraction per row (the conversions' own range starts later)
    events: list[MessageEvent] = []
    conversions: list[MessageEvent] = []
    for e in load_events(
        warehouse,
        account_id,
        metrics | {conversion_metric},
        since=lookback,
        until=end,
        tables=tables,
    ):
        if e.metric in metrics and e.message_id:
            events.append(e)
        if e.metric == conversion_metric and (start is None or e.ts >= start):
            conversions.append(e)
    attributed = attribute(events, conversions, windows)
    messages = load_messages(warehouse, account_id, tables=tables)

    # whole period, and per UTC day for the reconciliation
    total: dict[tuple[str, str], _Tally] = defaultdict(_Tally)
    daily: dict[tuple[str, str, int], _Tally] = defaultdict(_Tally)
    flow_of: dict[str, str] = {}
    channel_of: dict[tuple[str, str], str] = {}
    for e in events:
        mid = str(e.message_id)
        flow = e.flow_id
        source = "flow" if flow else "campaign"
        if flow:
            flow_of[mid] = flow
        key = (source, mid)
        if key not in channel_of:
            channel_of[key] = CHANNEL_OF.get(e.metric, "email")
        stat = _STAT_OF.get(e.metric)
        if stat is None:
            continue
        ts, profile = e.ts, e.profile_id
        if source in per_day:
            d = daily[(source, mid, ts // _DAY * _DAY)]
            d.counts[stat] += 1
            d.people[stat].add(profile)
        if start is not None and ts < start:
            continue  # read only as a touch for attribution
        t = total[key]
        t.counts[stat] += 1
        t.people[stat].add(profile)
        if stat == "delivered" and (t.first is None or ts < t.first):
            t.first = ts
    for r in attributed:
        if r.touch is None:
            continue
        key = _key(r.touch)
        c = r.conversion
        tallies = [total[key]]
        if key[0] in per_day:
            tallies.append(daily[(*key, c.ts // _DAY * _DAY)])
        for t in tallies:
            t.count("conversions", c.profile_id)
            t.value += c.value

    rows = []
    for (source, mid), t in total.items():
        info = messages.get(mid)
        parent, name, label, channel = _describe(
            source, mid, flow_of.get(mid), info, channel_of.get((source, mid), "email")
        )
        delivered = t.counts["delivered"]
        revenue = round(t.value, 2)
        rows.append(
            (
                source,
                parent,
                name,
                mid,
                label,
                channel,
                _day_iso(t.first),
                int(t.figure("recipients")),
                delivered,
                _rate(t.figure("opens_unique"), delivered),
                _rate(t.figure("clicks_unique"), delivered),
                t.counts["conversions"],
                _rate(t.figure("conversions_unique"), delivered),
                revenue,
                _rate(revenue, delivered),
                t.counts["unsubscribes"],
                _rate(t.figure("unsubscribes_unique"), delivered),
            )
        )
    rows.sort(key=lambda r: (-r[13], -r[7], r[0], r[3]))
    performance = Frame.of(
        MESSAGE_COLUMNS,
        rows,
        title="Campaign and flow message performance",
        notes={
            "conversion_metric": conversion_metric,
            "attribution_windows": windows.describe(),
            "messages": len(rows),
            "revenue": round(sum(r[13] for r in rows), 2),
        },
    )
    reconciliation = _reconcile(warehouse, account_id, daily, messages, start, end, reports)
    return CampaignPerformance(performance, reconciliation)


_REPORTS = (
    ("campaign", "campaign_values_daily", "campaign_message_id"),
    ("flow", "flow_series_daily", "flow_message_id"),
)


def _reconcile(
    warehouse: Warehouse,
    account_id: str,
    daily: dict[tuple[str, str, int], _Tally],
    messages: dict[str, MessageInfo],
    start: float | None,
    end: float | None,
    tables: frozenset[str],
) -> Frame:
    """Events vs stored reports over the days the reports cover (inside ``[start, end)``)."""
    stats = ", ".join(f"sum({s})" for s in RECONCILED_STATISTICS)
    rows: list[tuple[Any, ...]] = []
    totals: dict[str, dict[str, float]] = {}
    days_covered: dict[str, int] = {}
    for source, table, column in _REPORTS:
        if table not in tables:
            continue
        day = "cast(extract(epoch from day) as bigint)"
        where = "account_id = ?"
        params: list[Any] = [account_id]
        if start is not None:
            where += f" and {day} >= ?"
            params.append(int(start // _DAY * _DAY))
        if end is not None:
            where += f" and {day} + {_DAY} <= ?"
            params.append(int(end))
        days = {
            int(d)
            for (d,) in warehouse.query(
                f"select distinct {day} from {table} where {where}",  # noqa: S608 (fixed names)
                params,
            )
        }
        if not days:
            continue
        days_covered[source] = len(days)
        reported = {
            str(mid): [float(v or 0) for v in values]
            for mid, *values in warehouse.query(
                f"select {column}, {stats} from {table} where {where}"  # noqa: S608
                f" group by {column}",
                params,
            )
        }
        recounted: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(RECONCILED_STATISTICS))
        for (kind, mid, d), t in daily.items():
            if kind != source or d not in days:
                continue
            sums = recounted[mid]
            for i, s in enumerate(RECONCILED_STATISTICS):
                sums[i] += t.figure(s)
        sums_total = totals.setdefault(source, {})
        for mid in sorted(set(reported) | set(recounted)):
            info = messages.get(mid)
            name = info.parent_name if info is not None else mid
            ours = recounted.get(mid, [0.0] * len(RECONCILED_STATISTICS))
            theirs = reported.get(mid, [0.0] * len(RECONCILED_STATISTICS))
            for i, s in enumerate(RECONCILED_STATISTICS):
                a, b = round(ours[i], 2), round(theirs[i], 2)
                rows.append((source, mid, name, s, a, b, round(a - b, 2)))
                sums_total[f"{s}.events"] = round(sums_total.get(f"{s}.events", 0.0) + a, 2)
                sums_total[f"{s}.report"] = round(sums_total.get(f"{s}.report", 0.0) + b, 2)
    return Frame.of(
        ("source", "message_id", "name", "statistic", "events", "report", "difference"),
        rows,
        title="Events vs Klaviyo's reports (days the reports cover)",
        notes={"days": days_covered, "totals": totals},
    )
