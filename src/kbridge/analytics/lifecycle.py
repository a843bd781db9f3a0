"""Lifecycle health: each profile's stage, counts per stage, and month-over-month flows.

A profile's stage at a moment ``T`` follows from the *activity* it showed before
``T`` — engagement events (opens, clicks, site activity, browsing, carts,
checkouts) and purchases (``Placed Order``). First rule that applies:

============== =====================================================================
stage          rule (defaults of :class:`LifecycleRules`)
============== =====================================================================
new            created in the last 30 days (whatever it did)
never_engaged  no activity at all since it was created
engaged        active in the last 30 days *and* (≥ 3 activity events in those 30 days
               or a purchase in them)
active         active in the last 30 days
at_risk        last activity 30–90 days ago
lapsed         last activity 90–180 days ago
churned        last activity more than 180 days ago
============== =====================================================================

Receiving a message is not activity (it is something the account did, not the
person); neither are consent events or bounces.

Flows compare each profile's stage at the start of consecutive calendar months
(and at ``as_of`` for the current month); a profile created in between flows
from ``none``.
"""

# Identifiers in SQL text are kbridge's own; values are bound.
# ruff: noqa: S608

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kbridge.analytics._sql import (
    DAY,
    epoch,
    from_epoch,
    in_list,
    iso,
    month_starts,
    require_tables,
)
from kbridge.analytics._sql import resolve_as_of as _resolve_as_of
from kbridge.analytics.frame import Frame
from kbridge.warehouse import Warehouse

__all__ = [
    "ENGAGEMENT_METRICS",
    "PURCHASE_METRIC",
    "STAGES",
    "Lifecycle",
    "LifecycleRules",
    "lifecycle",
]

#: stages in the order tables and charts show them
STAGES = ("new", "engaged", "active", "at_risk", "lapsed", "churned", "never_engaged")

#: metrics that count as a person engaging (Klaviyo's standard names)
ENGAGEMENT_METRICS = (
    "Opened Email",
    "Clicked Email",
    "Clicked SMS",
    "Active on Site",
    "Viewed Product",
    "Added to Cart",
    "Started Checkout",
)
PURCHASE_METRIC = "Placed Order"


@dataclass(frozen=True, slots=True)
class LifecycleRules:
    """The thresholds behind the stages (days, and events for ``engaged``)."""

    new_days: float = 30
    active_days: float = 30
    at_risk_days: float = 90
    lapsed_days: float = 180
    engaged_min_events: int = 3
    engagement_metrics: tuple[str, ...] = ENGAGEMENT_METRICS
    purchase_metric: str = PURCHASE_METRIC

    def __post_init__(self) -> None:
        if not 0 < self.active_days <= self.at_risk_days <= self.lapsed_days:
            raise ValueError("lifecycle rules need 0 < active_days <= at_risk_days <= lapsed_days")


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """The lifecycle analysis.

    ``stages``: stage, profiles, share (of profiles existing at ``as_of``).
    ``profiles``: one row per profile with its stage and the figures behind it.
    ``monthly``: profiles per stage at the start of each month (and at ``as_of``).
    ``flows``: month, from_stage, to_stage, profiles — who moved where in each month.
    """

    as_of: datetime
    stages: Frame
    profiles: Frame
    monthly: Frame
    flows: Frame

    def to_dict(self) -> dict[str, object]:
        return {
            "as_of": self.as_of.isoformat(),
            "stages": self.stages.to_dict(),
            "monthly": self.monthly.to_dict(),
            "flows": self.flows.to_dict(),
        }


_PROFILE_COLUMNS = (
    "profile_id",
    "email",
    "stage",
    "days_since_created",
    "days_since_activity",
    "recent_events",
    "days_since_purchase",
    "purchases",
)


def _stage_sql(rules: LifecycleRules) -> str:
    """Per profile at ``T``: id, email, stage and its figures (placeholders: _params)."""
    metrics = (*rules.engagement_metrics, rules.purchase_metric)
    return f"""
WITH act AS (
  SELECT e.profile_id,
         MAX(e.datetime) AS last_active,
         MAX(CASE WHEN m.name = ? THEN e.datetime END) AS last_purchase,
         SUM(CASE WHEN e.datetime >= CAST(? AS TIMESTAMPTZ) THEN 1 ELSE 0 END) AS recent,
         SUM(CASE WHEN m.name = ? THEN 1 ELSE 0 END) AS purchases
  FROM events e
  JOIN metrics m ON m.account_id = e.account_id AND m.id = e.metric_id
  WHERE e.account_id = ? AND e.datetime < CAST(? AS TIMESTAMPTZ) AND m.name IN {in_list(metrics)}
  GROUP BY e.profile_id
)
SELECT p.id, p.email,
  CASE
    WHEN p.created >= CAST(? AS TIMESTAMPTZ) THEN 'new'
    WHEN a.last_active IS NULL THEN 'never_engaged'
    WHEN a.last_active >= CAST(? AS TIMESTAMPTZ)
         AND (a.recent >= ? OR a.last_purchase >= CAST(? AS TIMESTAMPTZ)) THEN 'engaged'
    WHEN a.last_active >= CAST(? AS TIMESTAMPTZ) THEN 'active'
    WHEN a.last_active >= CAST(? AS TIMESTAMPTZ) THEN 'at_risk'
    WHEN a.last_active >= CAST(? AS TIMESTAMPTZ) THEN 'lapsed'
    ELSE 'churned'
  END,
  (? - {epoch("p.created")}) / {DAY},
  (? - {epoch("a.last_active")}) / {DAY},
  COALESCE(a.recent, 0),
  (? - {epoch("a.last_purchase")}) / {DAY},
  COALESCE(a.purchases, 0)
FROM profiles p
LEFT JOIN act a ON a.profile_id = p.id
WHERE p.account_id = ? AND (p.created IS NULL OR p.created < CAST(? AS TIMESTAMPTZ))
ORDER BY p.id
"""


def _params(rules: LifecycleRules, account_id: str, t: float) -> list[object]:
    def ago(days: float) -> str:
        return iso(t - days * DAY)

    return [
        rules.purchase_metric,
        ago(rules.active_days),
        rules.purchase_metric,
        account_id,
        iso(t),
        *rules.engagement_metrics,
        rules.purchase_metric,
        ago(rules.new_days),
        ago(rules.active_days),
        rules.engaged_min_events,
        ago(rules.active_days),
        ago(rules.active_days),
        ago(rules.at_risk_days),
        ago(rules.lapsed_days),
        t,
        t,
        t,
        account_id,
        iso(t),
    ]


def _stages_at(
    warehouse: Warehouse, account_id: str, t: float, rules: LifecycleRules
) -> list[tuple[object, ...]]:
    rows = warehouse.query(_stage_sql(rules), _params(rules, account_id, t))
    return [
        (
            r[0],
            r[1],
            r[2],
            _days(r[3]),
            _days(r[4]),
            int(r[5]),
            _days(r[6]),
            int(r[7]),
        )
        for r in rows
    ]


def _days(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)


def _label(ts: float) -> str:
    return from_epoch(ts).strftime("%Y-%m")


def lifecycle(
    warehouse: Warehouse,
    account_id: str,
    *,
    as_of: datetime | None = None,
    months: int = 12,
    rules: LifecycleRules | None = None,
) -> Lifecycle:
    """Stages at ``as_of`` (default: just after the account's latest event) and the
    flows between stages over the last ``months`` calendar months."""
    if months < 1:
        raise ValueError("months must be at least 1")
    rules = rules or LifecycleRules()
    require_tables(warehouse, "profiles", "events", "metrics")
    t = _resolve_as_of(warehouse, account_id, as_of)
    current = _stages_at(warehouse, account_id, t, rules)
    counts = Counter(str(r[2]) for r in current)
    total = len(current)
    stages = Frame.of(
        ("stage", "profiles", "share"),
        [(s, counts[s], round(counts[s] / total, 4) if total else 0.0) for s in STAGES],
        title="Lifecycle stages",
        notes={"as_of": iso(t), "profiles": total},
    )
    profiles = Frame.of(_PROFILE_COLUMNS, current, title="Profiles by lifecycle stage")

    snapshots = [s for s in month_starts(t, months) if s < t] + [t]
    by_snapshot: list[dict[str, str]] = []
    for s in snapshots:
        rows = current if s == t else _stages_at(warehouse, account_id, s, rules)
        by_snapshot.append({str(r[0]): str(r[2]) for r in rows})
    monthly = Frame.of(
        ("at", *STAGES),
        [
            (iso(s)[:10], *(Counter(snap.values())[st] for st in STAGES))
            for s, snap in zip(snapshots, by_snapshot, strict=True)
        ],
        title="Profiles per stage over time",
    )
    flow_rows = []
    for i in range(1, len(snapshots)):
        before, after = by_snapshot[i - 1], by_snapshot[i]
        moves = Counter((before.get(pid, "none"), stage) for pid, stage in after.items())
        order = {s: k for k, s in enumerate(("none", *STAGES))}
        for (src, dst), n in sorted(
            moves.items(), key=lambda kv: (order[kv[0][0]], order[kv[0][1]])
        ):
            flow_rows.append((_label(snapshots[i - 1]), src, dst, n))
    flows = Frame.of(
        ("month", "from_stage", "to_stage", "profiles"),
        flow_rows,
        title="Stage flows month over month",
    )
    return Lifecycle(from_epoch(t), stages, profiles, monthly, flows)
