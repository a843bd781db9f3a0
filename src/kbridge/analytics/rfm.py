"""RFM segmentation: customers scored on recency, frequency and monetary value.

For every profile with at least one order (``Placed Order`` event) before ``as_of``:

* **recency** — days from its latest order to ``as_of``;
* **frequency** — its number of orders;
* **monetary** — the sum of their values (``$value``, else ``value``, else 0).

Each measure becomes a **quintile score** 1–5 (5 best: most recent, most orders,
most spent): ``score = 1 + floor(5 × w / N)`` where ``N`` is the number of
customers and ``w`` how many of them are *strictly worse* on that measure. Ties
are never split — equal values always get the same score — so when many
customers share a value (typically "1 order") a score may hold more than a fifth
of them and the next ones stay empty. ``FM`` is the mean of the F and M scores.

Named segments, first rule that applies (:data:`DEFAULT_SEGMENTS`):

================= ====================================================
segment           rule
================= ====================================================
Champions         R ≥ 4 and FM ≥ 4
Can't lose them   R ≤ 2 and FM ≥ 4
Loyal             R ≥ 3 and FM ≥ 3
At risk           R ≤ 2 and FM ≥ 3
New customers     R ≥ 4 and exactly one order
Promising         R ≥ 4
Needs attention   R = 3
Hibernating       R = 2
Lost              R = 1
================= ====================================================

Every (R, FM, orders) falls into exactly one of these.
"""

# Identifiers and JSON paths in SQL text are kbridge's own constants; values are bound.
# ruff: noqa: S608

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kbridge.analytics._sql import DAY, epoch, from_epoch, iso, json_text, require_tables
from kbridge.analytics._sql import resolve_as_of as _resolve_as_of
from kbridge.analytics.errors import AnalyticsError
from kbridge.analytics.frame import Frame
from kbridge.warehouse import Warehouse

__all__ = ["DEFAULT_SEGMENTS", "RFM", "SegmentRule", "quintile_scores", "rfm"]


@dataclass(frozen=True, slots=True)
class SegmentRule:
    """A named segment: the R score, FM score and order count ranges it takes (inclusive)."""

    name: str
    r_min: int = 1
    r_max: int = 5
    fm_min: float = 1.0
    fm_max: float = 5.0
    max_orders: int | None = None

    def matches(self, r: int, fm: float, orders: int) -> bool:
        return (
            self.r_min <= r <= self.r_max
            and self.fm_min <= fm <= self.fm_max
            and (self.max_orders is None or orders <= self.max_orders)
        )


#: the named segments, in rule order (first match wins)
DEFAULT_SEGMENTS: tuple[SegmentRule, ...] = (
    SegmentRule("Champions", r_min=4, fm_min=4),
    SegmentRule("Can't lose them", r_max=2, fm_min=4),
    SegmentRule("Loyal", r_min=3, fm_min=3),
    SegmentRule("At risk", r_max=2, fm_min=3),
    SegmentRule("New customers", r_min=4, max_orders=1),
    SegmentRule("Promising", r_min=4),
    SegmentRule("Needs attention", r_min=3, r_max=3),
    SegmentRule("Hibernating", r_min=2, r_max=2),
    SegmentRule("Lost", r_max=1),
)
OTHER = "Other"

_SEGMENT_COLUMNS = (
    "segment",
    "profiles",
    "share",
    "revenue",
    "revenue_share",
    "average_value",
    "average_orders",
    "average_recency_days",
)
_PROFILE_COLUMNS = (
    "profile_id",
    "email",
    "recency_days",
    "frequency",
    "monetary",
    "r",
    "f",
    "m",
    "segment",
)


@dataclass(frozen=True, slots=True)
class RFM:
    """The RFM analysis.

    ``segments``: segment, profiles, share, revenue, revenue_share, average_value,
    average_orders, average_recency_days — one row per named segment, in rule order.
    ``profiles``: one row per customer with its measures, scores and segment.
    """

    as_of: datetime
    segments: Frame
    profiles: Frame

    def segment_names(self) -> list[str]:
        return [str(s) for s in self.segments.column("segment")]

    def segment_name(self, text: str) -> str:
        """The segment ``text`` names, matched ignoring case, spaces, ``-``, ``_`` and ``'``."""
        names = {_slug(n): n for n in self.segment_names()}
        try:
            return names[_slug(text)]
        except KeyError:
            raise AnalyticsError(
                f"no RFM segment {text!r}; segments: {', '.join(self.segment_names())}"
            ) from None

    def members(self, segment: str) -> list[str]:
        """Profile ids in ``segment`` (named as :meth:`segment_name` accepts), by id."""
        name = self.segment_name(segment)
        at = _PROFILE_COLUMNS.index("segment")
        return [str(r[0]) for r in self.profiles.rows if r[at] == name]

    def to_dict(self) -> dict[str, object]:
        return {
            "as_of": self.as_of.isoformat(),
            "segments": self.segments.to_dict(),
        }


def _slug(name: str) -> str:
    return re.sub(r"[\s_\-']+", "", name).casefold()


def quintile_scores(values: Sequence[float], *, higher_is_better: bool = True) -> list[int]:
    """Score 1–5 for each value: ``1 + floor(5 × (values strictly worse) / len(values))``.

    Equal values always share a score.
    """
    ordered = sorted(values)
    n = len(ordered)
    out = []
    for v in values:
        worse = bisect_left(ordered, v) if higher_is_better else n - bisect_right(ordered, v)
        out.append(1 + (5 * worse) // n)
    return out


def _customers(
    warehouse: Warehouse, account_id: str, t: float, metric: str
) -> list[tuple[str, str | None, float, int, float]]:
    """(id, email, last order epoch, orders, value) per customer, by id (the email when the
    profile was synced too: events alone are enough)."""
    props = "e.event_properties"
    rows = warehouse.query(
        f"""
SELECT e.profile_id, p.email, {epoch("e.datetime")},
       {json_text(warehouse, props, "$value")}, {json_text(warehouse, props, "value")}
FROM events e
JOIN metrics m ON m.account_id = e.account_id AND m.id = e.metric_id
LEFT JOIN profiles p ON p.account_id = e.account_id AND p.id = e.profile_id
WHERE e.account_id = ? AND m.name = ? AND e.datetime < CAST(? AS TIMESTAMPTZ)
  AND e.profile_id IS NOT NULL
ORDER BY e.profile_id
""",
        [account_id, metric, iso(t)],
    )
    # Values are summed here, not in SQL: a non-numeric value must count as 0, not fail the cast.
    out: dict[str, list[Any]] = {}
    for pid, email, at, dollar_value, value in rows:
        c = out.setdefault(str(pid), [None if email is None else str(email), at, 0, 0.0])
        c[1] = max(c[1], at)
        c[2] += 1
        c[3] += _float(dollar_value if dollar_value is not None else value)
    return [(pid, c[0], float(c[1]), int(c[2]), float(c[3])) for pid, c in out.items()]


def _float(value: Any) -> float:
    try:
        return float(value) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0


def rfm(
    warehouse: Warehouse,
    account_id: str,
    *,
    as_of: datetime | None = None,
    metric: str = "Placed Order",
    segments: Sequence[SegmentRule] = DEFAULT_SEGMENTS,
) -> RFM:
    """RFM scores and named segments of the customers who ordered before ``as_of``
    (default: just after the account's latest event)."""
    require_tables(warehouse, "profiles", "events", "metrics")
    t = _resolve_as_of(warehouse, account_id, as_of)
    customers = _customers(warehouse, account_id, t, metric)
    recency = [(t - last) / DAY for _, _, last, _, _ in customers]
    frequency = [c[3] for c in customers]
    monetary = [round(c[4], 2) for c in customers]
    r_scores = quintile_scores(recency, higher_is_better=False)
    f_scores = quintile_scores([float(f) for f in frequency])
    m_scores = quintile_scores(monetary)

    names = [s.name for s in segments]
    profile_rows = []
    by_segment: dict[str, list[int]] = defaultdict(list)
    for i, (pid, email, _, orders, _) in enumerate(customers):
        fm = (f_scores[i] + m_scores[i]) / 2
        name = next((s.name for s in segments if s.matches(r_scores[i], fm, orders)), OTHER)
        by_segment[name].append(i)
        profile_rows.append(
            (
                pid,
                email,
                round(recency[i], 2),
                orders,
                monetary[i],
                r_scores[i],
                f_scores[i],
                m_scores[i],
                name,
            )
        )
    if by_segment.get(OTHER):
        names.append(OTHER)

    total_revenue = sum(monetary)
    segment_rows: list[tuple[Any, ...]] = []
    for name in names:
        idx = by_segment.get(name, [])
        n = len(idx)
        revenue = round(sum(monetary[i] for i in idx), 2)
        segment_rows.append(
            (
                name,
                n,
                round(n / len(customers), 4) if customers else 0.0,
                revenue,
                round(revenue / total_revenue, 4) if total_revenue else 0.0,
                round(revenue / n, 2) if n else None,
                round(sum(frequency[i] for i in idx) / n, 2) if n else None,
                round(sum(recency[i] for i in idx) / n, 1) if n else None,
            )
        )
    return RFM(
        as_of=from_epoch(t),
        segments=Frame.of(
            _SEGMENT_COLUMNS,
            segment_rows,
            title="RFM segments",
            notes={
                "as_of": iso(t),
                "customers": len(customers),
                "revenue": round(total_revenue, 2),
                "metric": metric,
            },
        ),
        profiles=Frame.of(_PROFILE_COLUMNS, profile_rows, title="Customers by RFM segment"),
    )
