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

from kbridge.analytics._coverage import Coverage, coverage
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
    "figures_from",
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
    per_day = {source for source, table, _, _ in _REPORTS if table in reports}
    # one read of the events for the touches and the conversions: each read of ``events``
    # costs a scan and a JSON extraction per row (the conversions' own range starts later)
    events: list[MessageEvent] = []
    conversions: list[MessageEvent] = []
    loaded = load_events(
        warehouse,
        account_id,
        metrics | {conversion_metric},
        since=lookback,
        until=end,
        tables=tables,
    )
    for e in loaded:
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

    cov = (
        coverage(
            warehouse,
            account_id,
            metrics | {conversion_metric},
            loaded,
            start=start,
            end=end,
            tables=tables,
        )
        if reconcile
        else Coverage(checked=False, why="not read (reconcile=False)")
    )
    reported = _read_reports(warehouse, account_id, start, end, reports)
    # events short of Klaviyo's own daily counts: each message's figures for the days its
    # report covers come from the report, the days it does not cover still from events
    prefer_reports = not cov.complete
    keys = set(total)
    if prefer_reports:
        keys |= {(source, mid) for source, r in reported.items() for mid in r.sums}
    rows = []
    for source, mid in keys:
        t = total[(source, mid)]
        info = messages.get(mid)
        parent, name, label, channel = _describe(
            source, mid, flow_of.get(mid), info, channel_of.get((source, mid), "email")
        )
        figures = _from_events(t)
        origin = "events"
        report = reported.get(source)
        if prefer_reports and report is not None and mid in report.sums:
            figures, origin = _with_report(figures, t, daily, source, mid, report)
            if not parent and report.parents.get(mid):
                parent = report.parents[mid]
        delivered = figures["delivered"]
        revenue = round(figures["conversion_value"], 2)
        rows.append(
            (
                source,
                parent,
                name,
                mid,
                label,
                channel,
                _day_iso(figures["first"]),
                int(figures["recipients"]),
                int(delivered),
                _rate(figures["opens_unique"], delivered),
                _rate(figures["clicks_unique"], delivered),
                int(figures["conversions"]),
                _rate(figures["converters"], delivered),
                revenue,
                _rate(revenue, delivered),
                int(figures["unsubscribes"]),
                _rate(figures["unsubscribers"], delivered),
                origin,
            )
        )
    rows.sort(key=lambda r: (-r[13], -r[7], r[0], r[3]))
    origins: dict[str, int] = defaultdict(int)
    for row in rows:
        origins[row[-1]] += 1
    performance = Frame.of(
        MESSAGE_COLUMNS,
        rows,
        title="Campaign and flow message performance",
        notes={
            "conversion_metric": conversion_metric,
            "attribution_windows": windows.describe(),
            "messages": len(rows),
            "revenue": round(sum(r[13] for r in rows), 2),
            "figures_from": dict(sorted(origins.items())),
            "events_coverage": cov.describe(),
        },
    )
    reconciliation = _reconcile(reported, daily, messages)
    return CampaignPerformance(performance, reconciliation)


_REPORTS = (
    ("campaign", "campaign_values_daily", "campaign_id", "campaign_message_id"),
    ("flow", "flow_series_daily", "flow_id", "flow_message_id"),
)
#: a message's figures: events' or a report's names for the same things
_FIGURES = (
    "recipients",
    "delivered",
    "opens_unique",
    "clicks_unique",
    "conversions",
    "converters",
    "conversion_value",
    "unsubscribes",
    "unsubscribers",
)
#: the report statistic a figure comes from (reports count no unique converters or
#: unsubscribers, so those are their counts)
_REPORT_FIGURE = {
    "recipients": "recipients",
    "delivered": "delivered",
    "opens_unique": "opens_unique",
    "clicks_unique": "clicks_unique",
    "conversions": "conversions",
    "converters": "conversions",
    "conversion_value": "conversion_value",
    "unsubscribes": "unsubscribes",
    "unsubscribers": "unsubscribes",
}
_EVENT_FIGURE = {
    "converters": "conversions_unique",
    "unsubscribers": "unsubscribes_unique",
}


@dataclass(slots=True)
class _Reported:
    """One report table's figures over the days of the period it covers."""

    days: set[int] = field(default_factory=set)
    sums: dict[str, list[float]] = field(default_factory=dict)  # RECONCILED_STATISTICS
    first: dict[str, int] = field(default_factory=dict)  # first day with a delivery
    parents: dict[str, str] = field(default_factory=dict)


def _from_events(t: _Tally) -> dict[str, Any]:
    out: dict[str, Any] = {f: t.figure(_EVENT_FIGURE.get(f, f)) for f in _FIGURES}
    out["first"] = t.first
    return out


def _with_report(
    events: dict[str, Any],
    t: _Tally,
    daily: dict[tuple[str, str, int], _Tally],
    source: str,
    mid: str,
    report: _Reported,
) -> tuple[dict[str, Any], str]:
    """The report's figures on the days it covers plus the events' on the other days of the
    period; and which of them contributed ("report" or "report + events")."""
    sums = report.sums.get(mid, [0.0] * len(RECONCILED_STATISTICS))
    out: dict[str, Any] = {}
    from_events = False
    for f in _FIGURES:
        stat = _EVENT_FIGURE.get(f, f)
        covered = sum(daily[(source, mid, d)].figure(stat) for d in report.days)
        rest = max(0.0, events[f] - covered)  # the period's events outside the report's days
        from_events = from_events or rest > 0
        out[f] = sums[RECONCILED_STATISTICS.index(_REPORT_FIGURE[f])] + rest
    firsts = [d for d in (report.first.get(mid), t.first if from_events else None) if d]
    out["first"] = min(firsts) if firsts else None
    return out, "report + events" if from_events else "report"


def _read_reports(
    warehouse: Warehouse,
    account_id: str,
    start: float | None,
    end: float | None,
    tables: frozenset[str],
) -> dict[str, _Reported]:
    """Each stored report's per-message sums over its days inside ``[start, end)``."""
    stats = ", ".join(f"sum({s})" for s in RECONCILED_STATISTICS)
    out: dict[str, _Reported] = {}
    day = "cast(extract(epoch from day) as bigint)"
    for source, table, parent, column in _REPORTS:
        if table not in tables:
            continue
        where = "account_id = ?"
        params: list[Any] = [account_id]
        if start is not None:
            where += f" and {day} >= ?"
            params.append(int(start // _DAY * _DAY))
        if end is not None:
            where += f" and {day} + {_DAY} <= ?"
            params.append(int(end))
        found = warehouse.query(
            f"select {column}, min({parent}), min(case when delivered > 0 then {day} end),"  # noqa: S608
            f" array_agg(distinct {day}), {stats} from {table} where {where} group by {column}",
            params,
        )
        if not found:
            continue
        r = out[source] = _Reported()
        for mid, parent_id, first, days, *values in found:
            r.days.update(int(d) for d in days)
            r.sums[str(mid)] = [float(v or 0) for v in values]
            if first is not None:
                r.first[str(mid)] = int(first)
            if parent_id:
                r.parents[str(mid)] = str(parent_id)
    return out


def _reconcile(
    reported: dict[str, _Reported],
    daily: dict[tuple[str, str, int], _Tally],
    messages: dict[str, MessageInfo],
) -> Frame:
    """Events vs stored reports over the days the reports cover."""
    rows: list[tuple[Any, ...]] = []
    totals: dict[str, dict[str, float]] = {}
    days_covered: dict[str, int] = {}
    for source, report in reported.items():
        days = report.days
        days_covered[source] = len(days)
        recounted: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(RECONCILED_STATISTICS))
        for (kind, mid, d), t in daily.items():
            if kind != source or d not in days:
                continue
            sums = recounted[mid]
            for i, s in enumerate(RECONCILED_STATISTICS):
                sums[i] += t.figure(s)
        sums_total = totals.setdefault(source, {})
        for mid in sorted(set(report.sums) | set(recounted)):
            info = messages.get(mid)
            name = info.parent_name if info is not None else mid
            ours = recounted.get(mid, [0.0] * len(RECONCILED_STATISTICS))
            theirs = report.sums.get(mid, [0.0] * len(RECONCILED_STATISTICS))
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
