"""Whether the synced events are complete, judged by Klaviyo's own daily counts.

``metric_aggregates_daily`` holds, per metric and UTC day, how many events Klaviyo
counted (and the sum of their ``$value``) — whatever the events stream managed to
read. On a day it covers, fewer synced events than Klaviyo's count means the events
are partial there: a later ``--start-date`` for the events than for the aggregates,
an events run stopped half way, or late events outside the lookback. The analyses
then take the totals (and, with the per-message reports, the message figures) from
Klaviyo's aggregates instead, and say so.
"""

# Identifiers in SQL text are kbridge's own constants; values are bound.
# ruff: noqa: S608

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from kbridge.analytics._messages import MessageEvent
from kbridge.warehouse import Warehouse

__all__ = ["AGGREGATES", "Coverage", "coverage"]

AGGREGATES = "metric_aggregates_daily"
_DAY = 86400


@dataclass(frozen=True, slots=True)
class Coverage:
    """Synced events against Klaviyo's daily aggregates, per metric, over whole UTC days.

    ``days``: the days of the period the aggregates cover; ``missing``: per metric, the
    events (count, value) the aggregates hold beyond the synced ones, summed over the
    days where there are more; ``short_days``: those days.
    """

    checked: bool
    why: str = ""
    days: frozenset[int] = frozenset()
    missing: dict[str, tuple[int, float]] = field(default_factory=dict)
    short_days: frozenset[int] = frozenset()

    @property
    def complete(self) -> bool:
        """No day of the period has fewer synced events than Klaviyo counted."""
        return not self.short_days

    def missing_of(self, metric: str) -> tuple[int, float]:
        return self.missing.get(metric, (0, 0.0))

    def describe(self) -> dict[str, Any]:
        """The figures for an analysis's notes."""
        if not self.checked:
            return {"checked": False, "why": self.why}
        return {
            "checked": True,
            "days_checked": len(self.days),
            "days_short": len(self.short_days),
            "events_missing": {m: n for m, (n, _) in sorted(self.missing.items())},
        }


def coverage(
    warehouse: Warehouse,
    account_id: str,
    metrics: Collection[str],
    events: Iterable[MessageEvent],
    *,
    start: float | None,
    end: float | None,
    tables: Collection[str],
) -> Coverage:
    """Compare ``events`` (the synced events of ``metrics`` the caller already read, at
    least over ``[start, end)``) with the aggregates, day by day, over the whole UTC days
    of ``[start, end)`` the aggregates cover."""
    if AGGREGATES not in tables:
        return Coverage(checked=False, why=f"{AGGREGATES} was not synced")
    names = sorted(set(metrics))
    day = "cast(extract(epoch from day) as bigint)"
    where = f"account_id = ? and metric_name in ({', '.join('?' for _ in names)})"
    params: list[Any] = [account_id, *names]
    if start is not None:
        where += f" and {day} >= ?"
        params.append(-(-int(start) // _DAY) * _DAY)  # the first whole day
    if end is not None:
        where += f" and {day} + {_DAY} <= ?"
        params.append(int(end))
    reported = warehouse.query(
        f"select metric_name, {day}, sum(count), sum(sum_value) from {AGGREGATES}"
        f" where {where} group by metric_name, {day}",
        params,
    )
    days = frozenset(int(d) for _, d, _, _ in reported)
    counted: dict[tuple[str, int], list[float]] = defaultdict(lambda: [0, 0.0])
    for e in events:
        d = e.ts // _DAY * _DAY
        if d in days and e.metric in metrics:
            tally = counted[(e.metric, d)]
            tally[0] += 1
            tally[1] += e.value
    missing: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    short: set[int] = set()
    for metric, d, n, total in reported:
        ours = counted.get((str(metric), int(d)), [0, 0.0])
        gap = int(n or 0) - int(ours[0])
        if gap > 0:
            short.add(int(d))
            m = missing[str(metric)]
            m[0] += gap
            m[1] += max(0.0, float(total or 0.0) - ours[1])
    return Coverage(
        checked=True,
        days=days,
        missing={k: (int(v[0]), round(v[1], 2)) for k, v in missing.items()},
        short_days=frozenset(short),
    )
