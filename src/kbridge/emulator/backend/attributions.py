"""An event's attributions (``include=attributions``): the message it is credited to.

The rule is the one the campaign and flow reports use (``reporting``): an
order (Placed Order, Ordered Product) is attributed, last touch, to the
profile's latest Opened Email, Clicked Email or Clicked SMS that carries a
``$message``, within the five days before it. Other events have none.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from typing import TYPE_CHECKING, Any

from kbridge.emulator.backend.resource import Linkage, Resource
from kbridge.emulator.backend.vocabulary import event_properties

if TYPE_CHECKING:
    from kbridge.emulator.backend.common import Context

__all__ = ["attribution_of"]

#: the reports' last-touch window (reporting.ATTRIBUTION_WINDOW)
_WINDOW = 5 * 86400.0
_TOUCHES = frozenset({"Opened Email", "Clicked Email", "Clicked SMS"})
_CONVERSIONS = frozenset({"Placed Order", "Ordered Product"})


def _props(ctx: Context, i: int) -> dict[str, Any]:
    ev = ctx.store.events
    if i < ev.generated:
        return event_properties(ctx.store.seed, i, ev.metric[i], ev.aux[i], ev.value[i])[0]
    return dict(ev.extra.get(i, ({}, None))[0])


def attribution_of(ctx: Context, i: int) -> Resource | None:
    """Event ``i``'s attribution record, or None when nothing is credited with it."""
    store = ctx.store
    ev = store.events
    metrics = store.metrics
    if metrics[ev.metric[i]].name not in _CONVERSIONS:
        return None
    ts = ev.ts[i]
    mine = store.events_by_profile.get(ev.profile[i], ())
    k = bisect_right(mine, ts, key=ev.ts.__getitem__) - 1
    while k >= 0 and ts - ev.ts[mine[k]] <= _WINDOW:
        j = mine[k]
        k -= 1
        if j == i or metrics[ev.metric[j]].name not in _TOUCHES:
            continue
        props = _props(ctx, j)
        message = props.get("$message")
        if isinstance(message, str):
            return _record(ctx, i, j, message, props.get("$flow"))
    return None


def _record(ctx: Context, i: int, touch: int, message: str, flow: Any) -> Resource:
    store = ctx.store
    event_id, touch_id = store.event_id(i), store.event_id(touch)
    digest = hashlib.blake2b(f"{event_id}:{touch_id}".encode(), digest_size=16).hexdigest()
    rels: dict[str, Linkage] = {
        "event": ("event", event_id),
        "attributed-event": ("event", touch_id),
    }
    if isinstance(flow, str) and flow:
        rels["flow"] = ("flow", flow)
        rels["flow-message"] = ("flow-message", message)
    else:
        campaigns = ctx.campaigns
        found = campaigns.message_campaign(message) if campaigns is not None else None
        if found is not None:
            rels["campaign"] = ("campaign", found[0].id)
        rels["campaign-message"] = ("campaign-message", message)
    return Resource("attribution", digest, {}, relationships=rels)
