"""A connection's account overview: rate-budget gauges, daily quotas' burn, recent 429s.

The figures are the worker's own: its limiter's windows and daily counts as
the :class:`~kbridge.service.ratebudgets.RateBudgetReader` finds them (the
in-process budgets of ``kbridge serve``, or Redis with a broker), and the
429s its jobs wrote to their timelines. Nothing here counts requests itself.

Klaviyo meters each endpoint on its own, so a tier's gauge shows its busiest
endpoint against that endpoint's limits (scaled by the connection's rate-limit
factor, as the worker paces), and names it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI

from kbridge import catalog
from kbridge.api.ratelimit import parse_limit_factor
from kbridge.catalog import RateLimit
from kbridge.service.ratebudgets import GroupUsage, RateBudgetReader

__all__ = ["DailyGauge", "TierGauge", "overview", "rate_budget_reader", "use_rate_budgets"]

#: Klaviyo's names for its endpoint tiers (burst a second, steady a minute)
_TIER_NAMES = {(1, 15): "XS", (3, 60): "S", (10, 150): "M", (75, 700): "L", (350, 3500): "XL"}
_TIER_TEXT = re.compile(r"(\d+)/s,(\d+)/m(?:,(\d+)/d)?$")


@dataclass(frozen=True, slots=True)
class TierGauge:
    """One endpoint tier: its busiest endpoint's use of the current windows."""

    tier: str
    burst_used: int
    burst_limit: int
    steady_used: int
    steady_limit: int
    busiest: str
    endpoints: int


@dataclass(frozen=True, slots=True)
class DailyGauge:
    """One daily-capped operation: today's count (UTC) against its cap."""

    operation: str
    used: int
    cap: int


def use_rate_budgets(app: FastAPI, reader: RateBudgetReader | None) -> None:
    """Tell the dashboard of ``app`` where the workers keep the rate budgets."""
    app.state.rate_budgets = reader


def rate_budget_reader(app: FastAPI) -> RateBudgetReader | None:
    reader: RateBudgetReader | None = getattr(app.state, "rate_budgets", None)
    return reader


def _catalog_limit(group: str) -> RateLimit | None:
    """The catalogue's limits of a bucket group: an operation id, ``"op param=value"``, or a
    tier (``"10/s,150/m"``, ``"alt …"``, ``"unknown …"``)."""
    op_id, _, alt = group.partition(" ")
    try:
        operation = catalog.get(op_id)
    except catalog.UnknownOperationError:
        operation = None
    if operation is not None:
        if not alt:
            return operation.rate_limit
        param, _, value = alt.partition("=")
        for limit in operation.alt_limits:
            if limit.param == param and limit.value == value:
                return limit.limit
        return None
    found = _TIER_TEXT.search(group)
    if found is None:
        return None
    burst, steady, daily = found.groups()
    return RateLimit(int(burst), int(steady), int(daily) if daily else None)


def _tier_name(limit: RateLimit) -> str:
    name = _TIER_NAMES.get((limit.burst, limit.steady))
    text = f"{limit.burst}/s, {limit.steady}/min"
    return f"{name} ({text})" if name else text


def _scaled(limit: RateLimit, factor: float) -> RateLimit:
    """The limits the worker paces to: the limiter's own scaling (floor, at least 1)."""
    return RateLimit(
        burst=max(1, math.floor(limit.burst * factor + 1e-9)),
        steady=max(1, math.floor(limit.steady * factor + 1e-9)),
        daily=limit.daily,
    )


def _daily_operations() -> list[tuple[str, int]]:
    return sorted(
        (op.operation_id, op.rate_limit.daily)
        for op in catalog.all_operations()
        if op.rate_limit.daily is not None
    )


def overview(
    reader: RateBudgetReader | None,
    account_id: str,
    rate_limits: str,
    *,
    rate_limited_24h: int,
) -> dict[str, Any]:
    """What the overview fragment shows: ``tiers``, ``daily``, ``rate_limited_24h``, and
    ``budgets_seen`` (False: no reader in this process; the page says so)."""
    try:
        factor = parse_limit_factor(rate_limits)
    except ValueError:
        factor = 1.0
    usage: list[GroupUsage] = reader.usage(account_id) if reader is not None else []
    busiest: dict[str, tuple[GroupUsage, RateLimit, int]] = {}
    today: dict[str, int] = {}
    for row in usage:
        if " " not in row.group:  # an operation's own bucket: its daily count
            today[row.group] = row.today
        limit = _catalog_limit(row.group)
        if limit is None:
            continue
        tier = _tier_name(limit)
        paced = limit if factor is None else _scaled(limit, factor)
        seen = busiest.get(tier)
        count = 1 if seen is None else seen[2] + 1
        if seen is None or (row.steady / paced.steady, row.burst) > (
            seen[0].steady / seen[1].steady,
            seen[0].burst,
        ):
            busiest[tier] = (row, paced, count)
        else:
            busiest[tier] = (seen[0], seen[1], count)
    tiers = [
        TierGauge(
            tier=tier,
            burst_used=row.burst,
            burst_limit=limit.burst,
            steady_used=row.steady,
            steady_limit=limit.steady,
            busiest=row.group,
            endpoints=count,
        )
        for tier, (row, limit, count) in sorted(
            busiest.items(), key=lambda item: (item[1][1].steady, item[0])
        )
    ]
    daily = [DailyGauge(op_id, today.get(op_id, 0), cap) for op_id, cap in _daily_operations()]
    return {
        "budgets_seen": reader is not None,
        "paced": factor is not None,
        "tiers": tiers,
        "daily": daily,
        "rate_limited_24h": rate_limited_24h,
    }


def since(now: datetime) -> datetime:
    """The start of the overview's "last 24 hours"."""
    return now - timedelta(hours=24)
