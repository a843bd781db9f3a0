"""Consent breakdown: email and SMS marketing consent now, its reasons, and month by month.

The state of each profile and channel comes from the synced ``subscriptions``
(Klaviyo's ``consent``, ``consent_timestamp``, ``method`` and, for email,
``suppression``). History is rebuilt per profile from two sources:

1. **consent events** (``Subscribed to List``, ``Subscribed to Email Marketing`` →
   subscribed; ``Unsubscribed``, ``Unsubscribed from Email Marketing`` →
   unsubscribed; the SMS equivalents), each a change at its ``datetime``;
2. **the profile's current state**, a change at its ``consent_timestamp`` (at the
   profile's creation when Klaviyo gives none). The profile is the last word: events
   at or after that moment are ignored, and a profile whose current state is
   ``NEVER_SUBSCRIBED`` was never subscribed, whatever events say.

``monthly`` has one row per channel for each of the last ``months`` calendar
months (UTC), the last being the month holding the second before ``as_of``:
the counts at the month's end (for that last month: at ``as_of``) and the
subscribes and unsubscribes that happened during it.

A profile's state at a moment ``T`` is the state of its latest change strictly
before ``T``; with no change before ``T`` it is ``NEVER_SUBSCRIBED``. Profiles
count from their creation. A profile is *suppressed* at ``T`` when one of its
suppressions is dated before ``T`` (an undated one counts from creation);
Klaviyo lists only the suppressions in force now, so a lifted suppression is
invisible to the history. A state before the first recorded change is unknown
to Klaviyo's data and reads ``NEVER_SUBSCRIBED``.
"""

# Identifiers and JSON paths in SQL text are kbridge's own constants; values are bound.
# ruff: noqa: S608

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kbridge.analytics._sql import (
    epoch,
    from_epoch,
    in_list,
    iso,
    json_text,
    month_starts,
    require_tables,
)
from kbridge.analytics._sql import resolve_as_of as _resolve_as_of
from kbridge.analytics.frame import Frame
from kbridge.core import loads
from kbridge.warehouse import Warehouse

__all__ = ["CHANNELS", "CONSENT_STATES", "Consent", "ConsentMetrics", "consent"]

CHANNELS = ("email", "sms")
#: Klaviyo's marketing consent states, in the order tables show them
CONSENT_STATES = ("SUBSCRIBED", "UNSUBSCRIBED", "NEVER_SUBSCRIBED")
_SUB, _UNSUB, _NEVER = CONSENT_STATES
_MONTHLY_COLUMNS = (
    "month",
    "channel",
    "profiles",
    "subscribed",
    "unsubscribed",
    "never_subscribed",
    "suppressed",
    "reachable",
    "subscribes",
    "unsubscribes",
)


@dataclass(frozen=True, slots=True)
class ConsentMetrics:
    """Event metrics that record a consent change, per channel (Klaviyo's standard names)."""

    email_subscribe: tuple[str, ...] = ("Subscribed to List", "Subscribed to Email Marketing")
    email_unsubscribe: tuple[str, ...] = ("Unsubscribed", "Unsubscribed from Email Marketing")
    sms_subscribe: tuple[str, ...] = ("Subscribed to SMS Marketing",)
    sms_unsubscribe: tuple[str, ...] = ("Unsubscribed from SMS Marketing",)

    def change(self) -> dict[str, tuple[str, str]]:
        """metric name → (channel, state it sets)."""
        out: dict[str, tuple[str, str]] = {}
        for names, channel, state in (
            (self.email_subscribe, "email", _SUB),
            (self.email_unsubscribe, "email", _UNSUB),
            (self.sms_subscribe, "sms", _SUB),
            (self.sms_unsubscribe, "sms", _UNSUB),
        ):
            for name in names:
                out[name] = (channel, state)
        return out


@dataclass(frozen=True, slots=True)
class Consent:
    """The consent analysis.

    ``current``: channel, state, profiles, share, suppressed — each channel's states at ``as_of``.
    ``suppressions``: channel, reason, profiles, share — why profiles are suppressed.
    ``methods``: channel, state, method, profiles — how profiles reached their current state.
    ``monthly``: month, channel, profiles, subscribed, unsubscribed, never_subscribed,
    suppressed, reachable, subscribes, unsubscribes — counts at each month end (the current
    month: at ``as_of``) and the changes during the month.
    """

    as_of: datetime
    current: Frame
    suppressions: Frame
    methods: Frame
    monthly: Frame

    def to_dict(self) -> dict[str, object]:
        return {
            "as_of": self.as_of.isoformat(),
            "current": self.current.to_dict(),
            "suppressions": self.suppressions.to_dict(),
            "methods": self.methods.to_dict(),
            "monthly": self.monthly.to_dict(),
        }


@dataclass(slots=True)
class _Channel:
    """One profile's consent on one channel: its changes (time, state), oldest first."""

    current: str
    method: str | None
    #: when the current state began (None for never subscribed)
    since: float | None = None
    changes: list[tuple[float, str]] = field(default_factory=list)
    #: (reason, since)
    suppressions: list[tuple[str, float]] = field(default_factory=list)

    def state_at(self, t: float) -> str:
        state = _NEVER
        for ts, s in self.changes:
            if ts >= t:
                break
            state = s
        return state

    def suppressed_at(self, t: float) -> list[str]:
        return [reason for reason, since in self.suppressions if since < t]

    def moves(self, start: float, end: float) -> tuple[int, int]:
        """(subscribes, unsubscribes) among the changes in ``[start, end)``."""
        subs = unsubs = 0
        state = self.state_at(start)
        for ts, s in self.changes:
            if start <= ts < end and s != state:
                subs += s == _SUB
                unsubs += s == _UNSUB
                state = s
        return subs, unsubs


@dataclass(slots=True)
class _Profile:
    created: float
    channels: dict[str, _Channel]


def _ts(text: Any) -> float | None:
    if text is None or text == "":
        return None
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()


def _load(warehouse: Warehouse, account_id: str) -> dict[str, _Profile]:
    cols = []
    for ch in CHANNELS:
        cols += [
            json_text(warehouse, "subscriptions", ch, "marketing", "consent_timestamp"),
            json_text(warehouse, "subscriptions", ch, "marketing", "method"),
            json_text(warehouse, "subscriptions", ch, "marketing", "suppression"),
        ]
    rows = warehouse.query(
        f"SELECT id, {epoch('created')}, email_consent, sms_consent, {', '.join(cols)}"
        " FROM profiles WHERE account_id = ? ORDER BY id",
        [account_id],
    )
    out: dict[str, _Profile] = {}
    for r in rows:
        pid, created = str(r[0]), float(r[1]) if r[1] is not None else float("-inf")
        channels = {}
        for k, ch in enumerate(CHANNELS):
            state = str(r[2 + k] or _NEVER)
            ts, method, supp = r[4 + 3 * k : 7 + 3 * k]
            c = _Channel(state, None if method is None else str(method))
            if state != _NEVER:
                at = _ts(ts)
                c.since = at if at is not None else created
                c.changes.append((c.since, state))
            for entry in loads(supp) if supp else []:
                since = _ts(entry.get("timestamp"))
                c.suppressions.append(
                    (str(entry.get("reason") or "UNKNOWN"), since if since is not None else created)
                )
            channels[ch] = c
        out[pid] = _Profile(created, channels)
    return out


def _add_events(
    warehouse: Warehouse, account_id: str, profiles: dict[str, _Profile], metrics: ConsentMetrics
) -> None:
    change = metrics.change()
    names = list(change)
    rows = warehouse.query(
        f"SELECT e.profile_id, m.name, {epoch('e.datetime')} FROM events e"
        " JOIN metrics m ON m.account_id = e.account_id AND m.id = e.metric_id"
        f" WHERE e.account_id = ? AND m.name IN {in_list(names)}",
        [account_id, *names],
    )
    for pid, name, at in rows:
        p = profiles.get(str(pid))
        if p is None or at is None:
            continue
        channel, state = change[str(name)]
        c = p.channels[channel]
        # The profile's own state is the last word: a never-subscribed profile stays so, and
        # events from its latest change on are already summed up by it.
        if c.since is None or float(at) >= c.since:
            continue
        c.changes.append((float(at), state))
    for p in profiles.values():
        for c in p.channels.values():
            c.changes.sort()


def consent(
    warehouse: Warehouse,
    account_id: str,
    *,
    as_of: datetime | None = None,
    months: int = 12,
    metrics: ConsentMetrics | None = None,
) -> Consent:
    """Email and SMS consent at ``as_of`` (default: just after the account's latest event or
    consent change) with suppression reasons and methods, and the last ``months`` month ends."""
    if months < 1:
        raise ValueError("months must be at least 1")
    profiles = _load(warehouse, account_id)
    _add_events(warehouse, account_id, profiles, metrics or ConsentMetrics())
    require_tables(warehouse, "profiles", "events", "metrics")
    t = _resolve_as_of(warehouse, account_id, as_of)
    if as_of is None:
        # a consent change can postdate the last event; "now" must include it
        latest = [
            ts
            for p in profiles.values()
            for c in p.channels.values()
            for ts in (*(x for x, _ in c.changes), *(s for _, s in c.suppressions))
        ]
        t = max(t, max(latest, default=t - 1.0) + 1.0)
    alive = {pid: p for pid, p in profiles.items() if p.created < t}

    current_rows: list[tuple[Any, ...]] = []
    suppression_rows: list[tuple[Any, ...]] = []
    method_rows: list[tuple[Any, ...]] = []
    for ch in CHANNELS:
        states: Counter[str] = Counter()
        suppressed: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        methods: Counter[tuple[str, str]] = Counter()
        n_suppressed = 0
        for p in alive.values():
            c = p.channels[ch]
            state = c.state_at(t)
            states[state] += 1
            why = c.suppressed_at(t)
            if why:
                suppressed[state] += 1
                n_suppressed += 1
                reasons.update(set(why))
            if state != _NEVER:
                methods[(state, c.method if state == c.current and c.method else "unknown")] += 1
        total = len(alive)
        order = [*CONSENT_STATES, *sorted(set(states) - set(CONSENT_STATES))]
        for state in order:
            current_rows.append(
                (ch, state, states[state], _share(states[state], total), suppressed[state])
            )
        for reason, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])):
            suppression_rows.append((ch, reason, n, _share(n, n_suppressed)))
        for (state, method), n in sorted(
            methods.items(), key=lambda kv: (order.index(kv[0][0]), -kv[1], kv[0][1])
        ):
            method_rows.append((ch, state, method, n))

    # the last month is the one holding as_of's last second: as_of on the 1st closes a month
    starts = month_starts(t - 1.0, months)
    ends = [*starts[1:], t]
    monthly_rows: list[tuple[Any, ...]] = []
    for start, end in zip(starts, ends, strict=True):
        label = from_epoch(start).strftime("%Y-%m")
        existing = [p for p in alive.values() if p.created < end]
        for ch in CHANNELS:
            counts: Counter[str] = Counter()
            n_supp = reachable = subs = unsubs = 0
            for p in existing:
                c = p.channels[ch]
                state = c.state_at(end)
                counts[state] += 1
                blocked = bool(c.suppressed_at(end))
                n_supp += blocked
                reachable += state == _SUB and not blocked
                s, u = c.moves(start, end)
                subs += s
                unsubs += u
            monthly_rows.append(
                (
                    label,
                    ch,
                    len(existing),
                    counts[_SUB],
                    counts[_UNSUB],
                    counts[_NEVER],
                    n_supp,
                    reachable,
                    subs,
                    unsubs,
                )
            )

    return Consent(
        as_of=from_epoch(t),
        current=Frame.of(
            ("channel", "state", "profiles", "share", "suppressed"),
            current_rows,
            title="Marketing consent by channel",
            notes={
                "as_of": iso(t),
                "profiles": len(alive),
                **{
                    f"{ch}_reachable": sum(
                        1
                        for p in alive.values()
                        if p.channels[ch].state_at(t) == _SUB
                        and not p.channels[ch].suppressed_at(t)
                    )
                    for ch in CHANNELS
                },
            },
        ),
        suppressions=Frame.of(
            ("channel", "reason", "profiles", "share"),
            suppression_rows,
            title="Suppression reasons",
        ),
        methods=Frame.of(
            ("channel", "state", "method", "profiles"),
            method_rows,
            title="How profiles reached their consent state",
        ),
        monthly=Frame.of(_MONTHLY_COLUMNS, monthly_rows, title="Consent at each month end"),
    )


def _share(n: int, total: int) -> float:
    return round(n / total, 4) if total else 0.0
