"""Values and series reports of campaigns, flows, forms and segments, computed from the
account's own events and segment members.

Every figure can be recounted from ``GET /api/events``: a message's events
are those whose ``$message`` property names it (flow messages also carry
``$flow``), inside the report's timeframe.

* recipients = delivered + bounced; delivered = Received Email events;
  bounced = Bounced Email events.
* opens/clicks count events; ``*_unique`` and the rates count profiles
  (rates divide by delivered; click_to_open_rate by unique openers).
* conversions: each conversion-metric event is attributed (last touch) to
  the message of the profile's most recent Opened or Clicked Email in the
  five days before it; conversion_value sums their values.
* unsubscribes / spam_complaints: Unsubscribed / Marked Email as Spam events
  carrying the message.

A flow series report counts the same way per interval bucket: buckets start
on calendar boundaries of the account timezone (the hour, midnight, Monday,
the 1st of the month) at or before the timeframe start, and only events
inside the timeframe count. Unique counts and rates are per bucket.

SMS spend statistics have no events in the emulator and answer 400 by name.

Form reports count the events of the form metrics (``FORM_METRICS``: Viewed
Form, Submitted Form, …) whose properties name a ``form_id`` (and
``form_version_id``), grouped by those; ``*_uniques`` count profiles, and
submit_rate is unique submitters over unique viewers.

Segment reports read each segment's current members and their
``joined_group_at``: members_added are the joins inside a bucket,
total_members those joined by its end. The emulator keeps no record of
leaving, so members_removed is 0.
"""

from __future__ import annotations

import zlib
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from kbridge.catalog import FilterField
from kbridge.emulator.backend.call import Outcome
from kbridge.emulator.backend.campaigns import campaigns_of
from kbridge.emulator.backend.common import TagBackend, attributes_of, data_of
from kbridge.emulator.backend.errors import InvalidError
from kbridge.emulator.backend.filtering import compile_conditions
from kbridge.emulator.backend.report_time import series_edges, series_interval, timeframe_bounds
from kbridge.emulator.backend.resource import Linkage, Resource
from kbridge.emulator.backend.vocabulary import HISTORIC_CAMPAIGNS, event_properties
from kbridge.emulator.query.filters import parse_filter

if TYPE_CHECKING:
    from kbridge.emulator.backend.call import Call
    from kbridge.emulator.backend.common import Context

__all__ = [
    "ATTRIBUTION_WINDOW",
    "ReportingBackend",
]

#: last-touch attribution window for conversions
ATTRIBUTION_WINDOW = 5 * 86400.0
_PTR = "/data/attributes"
SUPPORTED = (
    "average_order_value",
    "bounce_rate",
    "bounced",
    "bounced_or_failed",
    "bounced_or_failed_rate",
    "click_rate",
    "click_to_open_rate",
    "clicks",
    "clicks_unique",
    "conversion_rate",
    "conversion_uniques",
    "conversion_value",
    "conversions",
    "delivered",
    "delivery_rate",
    "failed",
    "failed_rate",
    "open_rate",
    "opens",
    "opens_unique",
    "recipients",
    "revenue_per_recipient",
    "spam_complaint_rate",
    "spam_complaints",
    "unsubscribe_rate",
    "unsubscribe_uniques",
    "unsubscribes",
)
#: Klaviyo's statistics the emulator has no events for (SMS segments and spend)
UNSUPPORTED = (
    "message_segment_count_sum",
    "text_message_credit_usage_amount",
    "text_message_roi",
    "text_message_spend",
)
_METRICS = {
    "Received Email": "delivered",
    "Bounced Email": "bounced",
    "Opened Email": "opens",
    "Clicked Email": "clicks",
    "Unsubscribed": "unsubscribes",
    "Marked Email as Spam": "spam_complaints",
    "Received SMS": "delivered",
    "Clicked SMS": "clicks",
}
#: generated events that name a generator campaign's message (SMS ones do not)
_GENERATED_WITH_MESSAGE = frozenset(
    (
        "Received Email",
        "Opened Email",
        "Clicked Email",
        "Bounced Email",
        "Marked Email as Spam",
        "Unsubscribed",
    )
)
_TOUCHES = ("Opened Email", "Clicked Email", "Clicked SMS")


def _fields(names: tuple[str, ...], list_operator: str) -> list[FilterField]:
    return [
        FilterField(n, single=("equals",), list=(list_operator,), value_type="string")
        for n in names
    ]


class _Kind:
    """What differs between the reports: campaign and flow messages, forms, segments."""

    def __init__(
        self,
        *,
        rtype: str,
        group_by: tuple[str, ...],
        default: tuple[str, ...],
        related: str | None,
        statistics: tuple[str, ...] = SUPPORTED,
        required: tuple[str, ...] | None = None,
        list_operator: str = "contains-any",
    ) -> None:
        self.rtype = rtype
        self.group_by = group_by
        self.default = default
        #: the resource type the report's relationships name (None: it has none)
        self.related = related
        self.statistics = statistics
        #: the groupings every group_by must include
        self.required = default[:2] if required is None else required
        self.fields = _fields(group_by, list_operator)


CAMPAIGN = _Kind(
    rtype="campaign-values-report",
    group_by=("campaign_id", "campaign_message_id", "campaign_message_name", "send_channel"),
    default=("campaign_id", "campaign_message_id", "send_channel"),
    related="campaign",
)
FLOW = _Kind(
    rtype="flow-values-report",
    group_by=("flow_id", "flow_message_id", "flow_name", "flow_message_name", "send_channel"),
    default=("flow_id", "flow_message_id", "send_channel"),
    related="flow",
)
#: a form statistic's event metric (its ``*_uniques`` counts that metric's profiles)
FORM_METRICS = {
    "viewed_form": "Viewed Form",
    "submits": "Submitted Form",
    "closed_form": "Closed Form",
    "qualified_form": "Qualified Form",
    "viewed_form_step": "Viewed Form Step",
    "submitted_form_step": "Submitted Form Step",
}
FORM = _Kind(
    rtype="form-values-report",
    group_by=("form_id", "form_version_id"),
    default=("form_id",),
    related=None,
    statistics=(
        *sorted(FORM_METRICS),
        *sorted(f"{s}_uniques" for s in FORM_METRICS if s != "submits"),
        "submit_rate",
    ),
    required=("form_id",),
    list_operator="any",
)
SEGMENT = _Kind(
    rtype="segment-values-report",
    group_by=("segment_id",),
    default=("segment_id",),
    related=None,
    statistics=("members_added", "members_removed", "net_members_changed", "total_members"),
    required=(),
    list_operator="any",
)


class ReportingBackend(TagBackend):
    operations = frozenset(
        {
            "query_campaign_values",
            "query_flow_values",
            "query_flow_series",
            "query_form_values",
            "query_form_series",
            "query_segment_values",
            "query_segment_series",
        }
    )

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._generated: dict[int, dict[str, Any]] = {}

    def query_campaign_values(self, call: Call) -> Outcome:
        return self._report(call, CAMPAIGN)

    def query_flow_values(self, call: Call) -> Outcome:
        return self._report(call, FLOW)

    def query_flow_series(self, call: Call) -> Outcome:
        return self._report(call, FLOW, series=True)

    def query_form_values(self, call: Call) -> Outcome:
        return self._report(call, FORM)

    def query_form_series(self, call: Call) -> Outcome:
        return self._report(call, FORM, series=True)

    def query_segment_values(self, call: Call) -> Outcome:
        return self._report(call, SEGMENT)

    def query_segment_series(self, call: Call) -> Outcome:
        return self._report(call, SEGMENT, series=True)

    # -- request ---------------------------------------------------------------------

    def _report(self, call: Call, kind: _Kind, *, series: bool = False) -> Outcome:
        rtype = kind.rtype.replace("-values-", "-series-") if series else kind.rtype
        attrs = attributes_of(data_of(call.body, rtype))
        stats = _statistics(attrs.get("statistics"), kind)
        conversion = self._conversion(attrs) if kind.related is not None else -1
        tz = ZoneInfo(str(self.store.account.get("timezone") or "UTC"))
        start, end = timeframe_bounds(attrs.get("timeframe"), self.ctx.now(), tz)
        edges = [start, end]
        if series:
            interval = series_interval(attrs.get("interval"), start, end)
            edges = series_edges(interval, start, end, tz)
        # segment reports take no group_by: always one row per segment
        group_by = kind.default if kind is SEGMENT else _group_by(attrs.get("group_by"), kind)
        keep: Callable[[dict[str, Any]], bool] | None = None
        if attrs.get("filter") not in (None, ""):
            if not isinstance(attrs["filter"], str):
                raise InvalidError("filter must be a string", pointer=f"{_PTR}/filter")
            conditions = parse_filter(
                attrs["filter"], call.operation, fields=kind.fields, pointer=f"{_PTR}/filter"
            )
            keep = compile_conditions(conditions, {f.name: _getter(f.name) for f in kind.fields})
        buckets = len(edges) - 1
        results = []
        related: list[str] = []
        merged: dict[tuple[Any, ...], list[_Tally]] = {}
        if kind is FORM:
            tallies = self._form_tallies(start, end, edges)
        elif kind is SEGMENT:
            tallies = self._segment_tallies(edges)
        else:
            tallies = self._aggregate(kind, conversion, start, end, edges)
        for bucket, tally in tallies:
            labels = tally.labels
            if keep is not None and not keep(labels):
                continue
            key = tuple(labels[g] for g in group_by)
            row = merged.setdefault(key, [_Tally() for _ in range(buckets)])
            row[bucket].add(tally)
            if kind.related is not None:
                related.append(labels[f"{kind.related}_id"])
        figures_of = _FIGURES.get(kind.rtype, _message_figures)
        for key in sorted(merged, key=lambda k: tuple(str(v) for v in k)):
            per_bucket = [t.statistics(stats, figures_of) for t in merged[key]]
            figures: dict[str, Any] = per_bucket[0]
            if series:
                figures = {name: [b[name] for b in per_bucket] for name in stats}
            results.append(
                {"groupings": dict(zip(group_by, key, strict=True)), "statistics": figures}
            )
        ident = f"{zlib.crc32(repr((rtype, stats, edges, group_by)).encode()):08x}"
        rel: dict[str, Linkage] = {}
        if kind.related is not None:
            rel[f"{kind.related}s"] = [(kind.related, i) for i in dict.fromkeys(sorted(related))]
        attributes: dict[str, Any] = {"results": results}
        if series:
            attributes["date_times"] = [
                datetime.fromtimestamp(t, tz).isoformat() for t in edges[:-1]
            ]
        return Outcome(data=Resource(rtype, ident, attributes, relationships=rel))

    def _conversion(self, attrs: dict[str, Any]) -> int:
        """The index of a message report's conversion metric (required by Klaviyo)."""
        metric_id = attrs.get("conversion_metric_id")
        if not isinstance(metric_id, str) or not metric_id:
            raise InvalidError(
                "conversion_metric_id is required", pointer=f"{_PTR}/conversion_metric_id"
            )
        conversion = self.store.metric_by_id.get(metric_id)
        if conversion is None:
            raise InvalidError(
                f"conversion_metric_id {metric_id!r} is not a metric of this account",
                pointer=f"{_PTR}/conversion_metric_id",
            )
        return conversion.index

    # -- counting ---------------------------------------------------------------------

    def _form_tallies(
        self, start: float, end: float, edges: list[float]
    ) -> list[tuple[int, _Tally]]:
        """Per (bucket, form version): the form metrics' events naming a ``form_id``."""
        store, ev = self.store, self.store.events
        tallies: dict[Any, _Tally] = {}
        for stat, name in FORM_METRICS.items():
            metric = store.metric_by_name.get(name)
            if metric is None:
                continue
            ordered = store.events_by_metric.get(metric.index, ())
            for k in range(bisect_left(ordered, start, key=ev.ts.__getitem__), len(ordered)):
                i = ordered[k]
                ts = ev.ts[i]
                if ts >= end:
                    break
                # the generator makes no form events: only events sent in carry a form
                props = ev.extra.get(i, ({}, None))[0]
                form = props.get("form_id")
                if not isinstance(form, str):
                    continue
                version = props.get("form_version_id")
                labels = {"form_id": form, "form_version_id": version}
                key = (bisect_right(edges, ts) - 1, form, version)
                if key not in tallies:
                    tallies[key] = _Tally(labels)
                tallies[key].count(stat, ev.profile[i])
        return [(key[0], t) for key, t in tallies.items()]

    def _segment_tallies(self, edges: list[float]) -> list[tuple[int, _Tally]]:
        """Per (bucket, segment): members who joined in the bucket, and all by its end.

        A member's history is its ``joined_group_at``; the emulator keeps no record
        of leaving, so a past bucket counts today's members only.
        """
        segments = self.ctx.segments
        out: list[tuple[int, _Tally]] = []
        for segment_id in sorted(self.store.segments):
            joined = sorted(segments.members(segment_id).values()) if segments else []
            for bucket in range(len(edges) - 1):
                lo, hi = edges[bucket], edges[bucket + 1]
                tally = _Tally({"segment_id": segment_id})
                tally.counts["members_added"] = bisect_left(joined, hi) - bisect_left(joined, lo)
                tally.counts["total_members"] = bisect_left(joined, hi)
                out.append((bucket, tally))
        return out

    def _props(self, i: int) -> dict[str, Any]:
        """What reports read of an event: ``$message`` and ``$flow``.

        Generated email events name one of the generator's campaigns by
        ``aux``; their message id is memoised per campaign instead of
        building each event's full properties (a large account has ~10^6).
        """
        ev = self.store.events
        if i < ev.generated:
            if self.store.metrics[ev.metric[i]].name not in _GENERATED_WITH_MESSAGE:
                return {}
            k = ev.aux[i] % HISTORIC_CAMPAIGNS
            found = self._generated.get(k)
            if found is None:
                found = event_properties(self.store.seed, i, ev.metric[i], ev.aux[i], 0.0)[0]
                found = {"$message": found.get("$message")}
                self._generated[k] = found
            return found
        return ev.extra.get(i, ({}, None))[0]

    def _labels(self, kind: _Kind, props: dict[str, Any]) -> dict[str, Any] | None:
        """The grouping values of an event's message, or None when not this kind's message."""
        mid = props.get("$message")
        if not isinstance(mid, str):
            return None
        if kind is FLOW:
            flow = props.get("$flow")
            if not isinstance(flow, str):
                return None
            name = props.get("Campaign Name")  # flows put the flow message's name there
            return {
                "flow_id": flow,
                "flow_message_id": mid,
                "flow_name": self._flow_name(flow),
                "flow_message_name": name if isinstance(name, str) else None,
                "send_channel": "email",
            }
        if props.get("$flow"):
            return None
        campaigns = campaigns_of(self.ctx)
        found = campaigns.message_campaign(mid) if campaigns is not None else None
        if found is None:
            return None
        c, m = found
        return {
            "campaign_id": c.id,
            "campaign_message_id": m.id,
            "campaign_message_name": m.definition.get("label") or c.name,
            "send_channel": m.channel,
        }

    def _flow_name(self, flow_id: str) -> str | None:
        """The flow's name, when the flows backend knows the flow (read by duck typing:
        reporting does not depend on how flows are stored)."""
        flows = self.ctx.flows.flows if self.ctx.flows is not None else None
        name = getattr(flows.get(flow_id), "name", None) if isinstance(flows, dict) else None
        return name if isinstance(name, str) else None

    def _aggregate(
        self, kind: _Kind, conversion: int, start: float, end: float, edges: list[float]
    ) -> list[tuple[int, _Tally]]:
        """Tallies per (bucket, message): ``edges`` are the bucket boundaries."""
        store = self.store
        ev = store.events
        tallies: dict[Any, _Tally] = {}
        labels_of: dict[str, dict[str, Any] | None] = {}

        def labels(props: dict[str, Any]) -> dict[str, Any] | None:
            key = f"{props.get('$flow')}|{props.get('$message')}"
            if key not in labels_of:
                labels_of[key] = self._labels(kind, props)
            return labels_of[key]

        def tally(lab: dict[str, Any], ts: float) -> _Tally:
            key = (bisect_right(edges, ts) - 1, tuple(sorted(lab.items())))
            if key not in tallies:
                tallies[key] = _Tally(lab)
            return tallies[key]

        touches: dict[int, list[tuple[float, str]]] = defaultdict(list)
        for name, stat in _METRICS.items():
            metric = store.metric_by_name.get(name)
            if metric is None:
                continue
            ordered = store.events_by_metric.get(metric.index, ())
            first = bisect_left(ordered, start - ATTRIBUTION_WINDOW, key=ev.ts.__getitem__)
            for k in range(first, len(ordered)):
                i = ordered[k]
                ts = ev.ts[i]
                if ts >= end:
                    break
                touch = name in _TOUCHES and ts >= start - ATTRIBUTION_WINDOW
                if ts < start and not touch:
                    continue
                props = self._props(i)
                lab = labels(props)
                if lab is None:
                    continue
                if touch:
                    touches[ev.profile[i]].append((ts, str(props["$message"])))
                if ts >= start:
                    tally(lab, ts).count(stat, ev.profile[i])
        by_message = {lab[f"{kind.related}_message_id"]: lab for lab in labels_of.values() if lab}
        for seq in touches:
            touches[seq].sort()
        ordered = store.events_by_metric.get(conversion, ())
        for k in range(bisect_left(ordered, start, key=ev.ts.__getitem__), len(ordered)):
            i = ordered[k]
            ts = ev.ts[i]
            if ts >= end:
                break
            mine = touches.get(ev.profile[i])
            if not mine:
                continue
            k = bisect_right(mine, (ts, "\uffff")) - 1
            if k < 0 or ts - mine[k][0] > ATTRIBUTION_WINDOW:
                continue
            tally(by_message[mine[k][1]], ts).convert(ev.profile[i], ev.value[i])
        return [(key[0], t) for key, t in tallies.items()]


class _Tally:
    """Counts of one message (or group of messages) and the profiles behind them."""

    def __init__(self, labels: dict[str, Any] | None = None) -> None:
        self.labels = labels or {}
        self.counts: dict[str, int] = defaultdict(int)
        self.people: dict[str, set[int]] = defaultdict(set)
        self.value = 0.0

    def count(self, stat: str, profile: int) -> None:
        self.counts[stat] += 1
        self.people[stat].add(profile)

    def convert(self, profile: int, value: float) -> None:
        self.count("conversions", profile)
        self.value += value

    def add(self, other: _Tally) -> None:
        for k, v in other.counts.items():
            self.counts[k] += v
        for k, s in other.people.items():
            self.people[k] |= s
        self.value += other.value

    def statistics(
        self, names: list[str], figures: Callable[[_Tally], dict[str, float | int]]
    ) -> dict[str, float | int]:
        values = figures(self)
        return {name: values[name] for name in names}


def _rate(n: float, d: float) -> float:
    return round(n / d, 4) if d else 0.0


def _message_figures(t: _Tally) -> dict[str, float | int]:
    """A message report's statistics from its tally."""
    c, u = t.counts, {k: len(v) for k, v in t.people.items()}
    delivered, bounced = c["delivered"], c["bounced"]
    recipients = delivered + bounced
    values: dict[str, float | int] = {
        "recipients": recipients,
        "delivered": delivered,
        "bounced": bounced,
        "failed": 0,
        "bounced_or_failed": bounced,
        "opens": c["opens"],
        "opens_unique": u.get("opens", 0),
        "clicks": c["clicks"],
        "clicks_unique": u.get("clicks", 0),
        "unsubscribes": c["unsubscribes"],
        "unsubscribe_uniques": u.get("unsubscribes", 0),
        "spam_complaints": c["spam_complaints"],
        "conversions": c["conversions"],
        "conversion_uniques": u.get("conversions", 0),
        "conversion_value": round(t.value, 2),
    }
    values |= {
        "delivery_rate": _rate(delivered, recipients),
        "bounce_rate": _rate(bounced, recipients),
        "failed_rate": 0.0,
        "bounced_or_failed_rate": _rate(bounced, recipients),
        "open_rate": _rate(values["opens_unique"], delivered),
        "click_rate": _rate(values["clicks_unique"], delivered),
        "click_to_open_rate": _rate(values["clicks_unique"], values["opens_unique"]),
        "unsubscribe_rate": _rate(values["unsubscribe_uniques"], delivered),
        "spam_complaint_rate": _rate(u.get("spam_complaints", 0), delivered),
        "conversion_rate": _rate(values["conversion_uniques"], delivered),
        "revenue_per_recipient": _rate(t.value, delivered),
        "average_order_value": _rate(t.value, c["conversions"]),
    }
    return values


def _form_figures(t: _Tally) -> dict[str, float | int]:
    """A form report's statistics: counts of each form metric and of its profiles."""
    values: dict[str, float | int] = {}
    for stat in FORM_METRICS:
        values[stat] = t.counts[stat]
        values[f"{stat}_uniques"] = len(t.people[stat])
    # a rate in [0, 1]: the share of the form's viewers who submitted it
    values["submit_rate"] = _rate(values["submits_uniques"], values["viewed_form_uniques"])
    return values


def _segment_figures(t: _Tally) -> dict[str, float | int]:
    added, removed = t.counts["members_added"], t.counts["members_removed"]
    return {
        "members_added": added,
        "members_removed": removed,
        "net_members_changed": added - removed,
        "total_members": t.counts["total_members"],
    }


#: report type → how its statistics come from a tally (message reports otherwise)
_FIGURES: dict[str, Callable[[_Tally], dict[str, float | int]]] = {
    FORM.rtype: _form_figures,
    SEGMENT.rtype: _segment_figures,
}


def _statistics(value: Any, kind: _Kind) -> list[str]:
    ptr = f"{_PTR}/statistics"
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InvalidError("statistics must be a non-empty list of statistic names", pointer=ptr)
    unsupported = [v for v in value if v in UNSUPPORTED and kind.related is not None]
    if unsupported:
        raise InvalidError(
            f"the emulator cannot compute {', '.join(unsupported)} (no SMS spend "
            "data); ask for other statistics",
            pointer=ptr,
        )
    unknown = [v for v in value if v not in kind.statistics]
    if unknown:
        raise InvalidError(f"unknown statistic(s): {', '.join(unknown)}", pointer=ptr)
    return list(dict.fromkeys(value))


def _group_by(value: Any, kind: _Kind) -> tuple[str, ...]:
    ptr = f"{_PTR}/group_by"
    if value is None:
        return kind.default
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidError("group_by must be a list of attribute names", pointer=ptr)
    unknown = [v for v in value if v not in kind.group_by]
    if unknown:
        raise InvalidError(
            f"the emulator cannot group {kind.rtype.split('-')[0]} reports by "
            f"{', '.join(unknown)}; use {', '.join(kind.group_by)}",
            pointer=ptr,
        )
    missing = [r for r in kind.required if r not in value]
    if missing:
        raise InvalidError(f"group_by must include {', '.join(missing)}", pointer=ptr)
    return tuple(dict.fromkeys(value))


def _getter(name: str) -> Callable[[dict[str, Any]], Any]:
    return lambda labels: labels.get(name)
