"""Last-touch attribution of conversions to the campaign or flow message before them.

The rules (also in docs/analytics.md, "Attribution"):

* A **touch** is an Opened Email, Clicked Email or Clicked SMS event that
  names its message (``$message``; flow messages also ``$flow``). Touches
  without a message id (e.g. clicks on untracked links) never attribute.
* A **conversion** is an event of the conversion metric (default
  ``Placed Order``); its value is ``$value`` (else ``value``, else 0).
* A conversion goes to the profile's **most recent** touch at or before it
  that is still inside that touch's window: email opens and clicks 5 days,
  SMS clicks 1 day (configurable). An older touch still inside its window
  wins over a newer one whose window has passed. Touches in the same second
  rank clicks above opens, then by event id.
* Nothing else attributes, so a conversion has one message or none
  ("unattributed"); campaigns and flows compete for the same conversions.

These are the rules of Klaviyo's campaign/flow values reports (the emulator
computes its reports the same way), so on the same events the per-message
conversions and revenue agree with ``campaign_values_daily``.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from kbridge.analytics._coverage import AGGREGATES, coverage
from kbridge.analytics._messages import (
    MessageEvent,
    MessageInfo,
    load_events,
    load_messages,
)
from kbridge.analytics._sql import seconds, table_names
from kbridge.analytics.frame import Frame
from kbridge.warehouse import Warehouse

__all__ = [
    "TOUCH_METRICS",
    "AttributedConversion",
    "Windows",
    "attribute",
    "attributed_conversions",
    "attribution",
]

#: touch metric → (channel, kind)
TOUCH_METRICS = {
    "Opened Email": ("email", "open"),
    "Clicked Email": ("email", "click"),
    "Clicked SMS": ("sms", "click"),
}
_RANK = {"open": 0, "click": 1}


@dataclass(frozen=True, slots=True)
class Windows:
    """How long after a touch a conversion may still be attributed to it."""

    email_open: timedelta = timedelta(days=5)
    email_click: timedelta = timedelta(days=5)
    sms_click: timedelta = timedelta(days=1)

    def seconds(self, channel: str, kind: str) -> float:
        if channel == "sms":
            return self.sms_click.total_seconds()
        window = self.email_click if kind == "click" else self.email_open
        return window.total_seconds()

    @property
    def longest(self) -> float:
        return max(w.total_seconds() for w in (self.email_open, self.email_click, self.sms_click))

    def describe(self) -> str:
        def fmt(w: timedelta) -> str:
            hours = w.total_seconds() / 3600
            return f"{hours / 24:g} d" if hours % 24 == 0 else f"{hours:g} h"

        return (
            f"email opens {fmt(self.email_open)}, email clicks {fmt(self.email_click)}, "
            f"SMS clicks {fmt(self.sms_click)}"
        )


@dataclass(frozen=True, slots=True)
class AttributedConversion:
    """A conversion and the touch it was attributed to (None: unattributed)."""

    conversion: MessageEvent
    touch: MessageEvent | None


def _touch_key(e: MessageEvent) -> tuple[int, int, str]:
    return (e.ts, _RANK[TOUCH_METRICS[e.metric][1]], e.id)


def attribute(
    touches: Sequence[MessageEvent],
    conversions: Sequence[MessageEvent],
    windows: Windows | None = None,
) -> list[AttributedConversion]:
    """Pure last-touch attribution (the rules in this module's docstring)."""
    windows = windows or Windows()
    longest = windows.longest
    by_profile: dict[str, list[MessageEvent]] = defaultdict(list)
    for t in touches:
        if t.message_id and t.metric in TOUCH_METRICS:
            by_profile[t.profile_id].append(t)
    keys: dict[str, list[tuple[int, int, str]]] = {}
    for profile, listed in by_profile.items():
        listed.sort(key=_touch_key)
        keys[profile] = [_touch_key(t) for t in listed]
    out: list[AttributedConversion] = []
    for c in conversions:
        mine = by_profile.get(c.profile_id)
        chosen: MessageEvent | None = None
        if mine:
            k = bisect_right(keys[c.profile_id], (c.ts, len(_RANK), "\uffff")) - 1
            while k >= 0:
                t = mine[k]
                age = c.ts - t.ts
                if age > longest:
                    break
                channel, kind = TOUCH_METRICS[t.metric]
                if age <= windows.seconds(channel, kind):
                    chosen = t
                    break
                k -= 1
        out.append(AttributedConversion(c, chosen))
    return out


def attributed_conversions(
    warehouse: Warehouse,
    account_id: str,
    *,
    since: datetime | None = None,
    as_of: datetime | None = None,
    conversion_metric: str = "Placed Order",
    windows: Windows | None = None,
) -> list[AttributedConversion]:
    """Every conversion in ``[since, as_of)`` with the touch it is attributed to."""
    windows = windows or Windows()
    start, end = seconds(since), seconds(as_of)
    lookback = None if start is None else start - windows.longest
    touches = load_events(warehouse, account_id, TOUCH_METRICS, since=lookback, until=end)
    conversions = load_events(warehouse, account_id, [conversion_metric], since=start, until=end)
    return attribute(touches, conversions, windows)


def _source(touch: MessageEvent, messages: dict[str, MessageInfo]) -> tuple[str, str, str, str]:
    """(source, id, name, channel) of the campaign or flow a touch's message belongs to."""
    mid = str(touch.message_id)
    info = messages.get(mid)
    channel = TOUCH_METRICS[touch.metric][0]
    if touch.flow_id:
        name = info.parent_name if info is not None else f"flow {touch.flow_id}"
        return "flow", touch.flow_id, name, channel
    if info is not None:
        return info.source, info.parent_id, info.parent_name, info.channel
    return "campaign", "", f"unknown message {mid}", channel


def attribution(
    warehouse: Warehouse,
    account_id: str,
    *,
    since: datetime | None = None,
    as_of: datetime | None = None,
    conversion_metric: str = "Placed Order",
    windows: Windows | None = None,
) -> Frame:
    """Conversions and revenue attributed (last touch) to each campaign and flow.

    One row per campaign or flow, most revenue first. ``notes`` carry the
    totals (conversions, revenue, and how much of each no message earned),
    the windows, and — where events carry Klaviyo's own
    ``$attributed_message`` — how often Klaviyo chose the same message.
    """
    windows = windows or Windows()
    results = attributed_conversions(
        warehouse,
        account_id,
        since=since,
        as_of=as_of,
        conversion_metric=conversion_metric,
        windows=windows,
    )
    tables = table_names(warehouse)
    messages = load_messages(warehouse, account_id, tables=tables)
    # the totals are every conversion, not only the synced ones: on days Klaviyo's daily
    # aggregates count more than the events hold, the difference joins the unattributed
    cov = coverage(
        warehouse,
        account_id,
        [conversion_metric],
        [r.conversion for r in results],
        start=seconds(since),
        end=seconds(as_of),
        tables=tables,
    )
    missing, missing_value = cov.missing_of(conversion_metric)
    groups: dict[tuple[str, str, str, str], list[MessageEvent]] = defaultdict(list)
    by_touch: dict[str, int] = defaultdict(int)
    stamped = agreeing = 0
    for r in results:
        c = r.conversion
        if c.attributed_message:
            stamped += 1
            agreeing += r.touch is not None and r.touch.message_id == c.attributed_message
        if r.touch is None:
            continue
        groups[_source(r.touch, messages)].append(c)
        channel, kind = TOUCH_METRICS[r.touch.metric]
        by_touch[f"{channel} {kind}"] += 1
    total_value = sum(r.conversion.value for r in results) + missing_value
    attributed_value = sum(c.value for cs in groups.values() for c in cs)
    rows = []
    for (source, ident, name, channel), convs in groups.items():
        revenue = round(sum(c.value for c in convs), 2)
        share = revenue / total_value if total_value else 0.0
        converters = len({c.profile_id for c in convs})
        rows.append(
            (source, ident, name, channel, len(convs), converters, revenue, round(share, 4))
        )
    rows.sort(key=lambda r: (-r[6], -r[4], r[0], r[1]))
    attributed = sum(len(cs) for cs in groups.values())
    conversions = len(results) + missing
    notes: dict[str, object] = {
        "conversion_metric": conversion_metric,
        "windows": windows.describe(),
        "conversions": conversions,
        "attributed_conversions": attributed,
        "unattributed_conversions": conversions - attributed,
        "revenue": round(total_value, 2),
        "attributed_revenue": round(attributed_value, 2),
        "unattributed_revenue": round(total_value - attributed_value, 2),
        "by_touch": dict(sorted(by_touch.items())),
        # where the totals (conversions, revenue) came from; the per-message rows are
        # always from events, since attribution needs each profile's touches
        "totals_from": f"events + {AGGREGATES}" if missing else "events",
        "events_missing": {"conversions": missing, "revenue": missing_value},
        "events_coverage": cov.describe(),
    }
    if stamped:
        notes["klaviyo_stamped_conversions"] = stamped
        notes["klaviyo_agreement"] = round(agreeing / stamped, 4)
    return Frame.of(
        (
            "source",
            "id",
            "name",
            "channel",
            "conversions",
            "converters",
            "revenue",
            "revenue_share",
        ),
        rows,
        title=f"Attribution of {conversion_metric} (last touch)",
        notes=notes,
    )
