"""Message events and message names, read once for campaign analyses.

Klaviyo stamps every event a message causes with the message's id in
``event_properties["$message"]`` (flow messages also carry ``$flow``); a
conversion (e.g. Placed Order) carries its ``$value``. Attribution and
campaign performance both start from these rows.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from kbridge.analytics._sql import json_text, table_names
from kbridge.warehouse import Warehouse

__all__ = [
    "CHANNEL_OF",
    "DELIVERY_METRICS",
    "MessageEvent",
    "MessageInfo",
    "load_events",
    "load_messages",
]

#: the channel a message metric belongs to
CHANNEL_OF = {
    "Received Email": "email",
    "Bounced Email": "email",
    "Opened Email": "email",
    "Clicked Email": "email",
    "Unsubscribed": "email",
    "Marked Email as Spam": "email",
    "Received SMS": "sms",
    "Clicked SMS": "sms",
}
DELIVERY_METRICS = frozenset(("Received Email", "Received SMS"))


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """One event as the campaign analyses see it (``ts`` in epoch seconds)."""

    id: str
    metric: str
    profile_id: str
    ts: int
    message_id: str | None
    flow_id: str | None
    value: float
    attributed_message: str | None = None


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """What the warehouse knows of a campaign or flow message."""

    source: str  # "campaign" or "flow"
    parent_id: str  # campaign id or flow id
    parent_name: str
    name: str
    channel: str


def _float(value: Any) -> float:
    try:
        return float(value) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0


def load_events(
    warehouse: Warehouse,
    account_id: str,
    metrics: Iterable[str],
    *,
    since: float | None = None,
    until: float | None = None,
    tables: Collection[str] | None = None,
) -> list[MessageEvent]:
    """Events of the named metrics in ``[since, until)``, oldest first.

    An event without a ``timestamp`` is dated by its ``datetime``. ``tables``: the
    warehouse's tables when the caller has already read them.
    """
    names = sorted(set(metrics))
    if not names or not _have(warehouse, tables, "events", "metrics"):
        return []
    ts = "coalesce(e.timestamp, cast(extract(epoch from e.datetime) as bigint))"
    props = "e.event_properties"
    keys = ("$message", "$flow", "$value", "value", "$attributed_message")
    where = f" where e.account_id = ? and m.name in ({', '.join('?' for _ in names)})"
    params: list[Any] = [account_id, *names]
    if since is not None:
        where += f" and {ts} >= ?"
        params.append(int(since))
    if until is not None:
        where += f" and {ts} < ?"
        params.append(int(until))
    joined = " from events e join metrics m on m.account_id = e.account_id and m.id = e.metric_id"
    if warehouse.capabilities.dialect == "postgresql":
        texts = ", ".join(json_text(warehouse, props, k) for k in keys)
        sql = f"select e.id, m.name, e.profile_id, {ts}, {texts}{joined}{where}"
        sql += f" order by {ts}, e.id"
    else:
        # DuckDB parses an event's JSON once for a list of paths, once per path otherwise
        paths = ", ".join(f"'$.\"{k}\"'" for k in keys)
        sql = (
            "select id, metric, profile_id, ts, x[1], x[2], x[3], x[4], x[5] from ("  # noqa: S608
            f"select e.id, m.name as metric, e.profile_id, {ts} as ts,"
            f" json_extract_string({props}, [{paths}]) as x{joined}{where}"
            ") order by ts, id"
        )
    out: list[MessageEvent] = []
    for (
        eid,
        metric,
        profile,
        when,
        message,
        flow,
        dollar_value,
        value,
        attributed,
    ) in warehouse.query(sql, params):
        if profile is None or when is None:
            continue
        out.append(
            MessageEvent(
                id=str(eid),
                metric=str(metric),
                profile_id=str(profile),
                ts=int(when),
                message_id=message or None,
                flow_id=flow or None,
                value=_float(dollar_value if dollar_value is not None else value),
                attributed_message=attributed or None,
            )
        )
    return out


def _have(warehouse: Warehouse, tables: Collection[str] | None, *names: str) -> bool:
    if tables is None:
        present = table_names(warehouse)
        return all(n in present for n in names)
    return all(n in tables for n in names)


def load_messages(
    warehouse: Warehouse, account_id: str, *, tables: Collection[str] | None = None
) -> dict[str, MessageInfo]:
    """Every campaign and flow message the sync stored, by message id."""
    found: dict[str, MessageInfo] = {}
    if _have(warehouse, tables, "campaign_messages", "campaigns"):
        for mid, cid, label, channel, name, campaign_channel in warehouse.query(
            "select m.id, m.campaign_id, m.label, m.channel, c.name, c.channel"
            " from campaign_messages m left join campaigns c"
            " on c.account_id = m.account_id and c.id = m.campaign_id"
            " where m.account_id = ?",
            [account_id],
        ):
            found[str(mid)] = MessageInfo(
                "campaign",
                str(cid or ""),
                str(name or label or cid or mid),
                str(label or name or mid),
                str(channel or campaign_channel or "email"),
            )
    if _have(warehouse, tables, "flow_messages", "flow_actions", "flows"):
        for mid, fid, name, channel, flow_name in warehouse.query(
            "select m.id, a.flow_id, m.name, m.channel, f.name"
            " from flow_messages m"
            " left join flow_actions a on a.account_id = m.account_id and a.id = m.flow_action_id"
            " left join flows f on f.account_id = m.account_id and f.id = a.flow_id"
            " where m.account_id = ?",
            [account_id],
        ):
            found[str(mid)] = MessageInfo(
                "flow",
                str(fid or ""),
                str(flow_name or fid or mid),
                str(name or mid),
                str(channel or "email"),
            )
    return found
