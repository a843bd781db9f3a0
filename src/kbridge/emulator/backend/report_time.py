"""Report timeframes and series intervals, read in the account's timezone.

A timeframe is a ``key`` (``last_30_days``, ``this_month``, …) or a ``start`` and
``end`` whose wall-clock times are read in the account's timezone (Klaviyo ignores
the offset given). A series' buckets start on calendar boundaries of that timezone.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from kbridge.emulator.backend.errors import InvalidError

__all__ = [
    "INTERVALS",
    "TIMEFRAME_KEYS",
    "series_edges",
    "series_interval",
    "timeframe_bounds",
]

_PTR = "/data/attributes"
TIMEFRAME_KEYS = (
    "today",
    "yesterday",
    "this_week",
    "last_week",
    "this_month",
    "last_month",
    "this_year",
    "last_year",
    "last_7_days",
    "last_30_days",
    "last_90_days",
    "last_3_months",
    "last_12_months",
    "last_365_days",
)
#: series intervals and the longest timeframe each allows (Klaviyo's documented limits;
#: weekly is bounded only by the one-year timeframe limit)
INTERVALS: dict[str, float] = {
    "hourly": 7 * 86400.0,
    "daily": 60 * 86400.0,
    "weekly": 366 * 86400.0,
    "monthly": 52 * 7 * 86400.0,
}


def timeframe_bounds(value: Any, now: float, tz: ZoneInfo) -> tuple[float, float]:
    """``[start, end)`` epoch seconds of a report timeframe, in the account's timezone."""
    ptr = f"{_PTR}/timeframe"
    if not isinstance(value, dict):
        raise InvalidError(
            'timeframe is required: {"key": …} or {"start": …, "end": …}', pointer=ptr
        )
    if "key" in value:
        return _key_bounds(value["key"], now, tz)
    try:
        start = _wall_clock(value.get("start"), tz)
        end = _wall_clock(value.get("end"), tz)
    except ValueError:
        raise InvalidError(
            "timeframe start and end must be ISO 8601 datetimes", pointer=ptr
        ) from None
    if end <= start:
        raise InvalidError("timeframe end must be after start", pointer=f"{ptr}/end")
    if end - start > 366 * 86400:
        raise InvalidError("a report timeframe spans at most one year", pointer=ptr)
    return start, end


def _wall_clock(text: Any, tz: ZoneInfo) -> float:
    """``text``'s date and time read in ``tz``: Klaviyo ignores the offset given."""
    if not isinstance(text, str):
        raise ValueError(text)
    wall = datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)
    return wall.replace(tzinfo=tz).timestamp()


def _key_bounds(key: Any, now: float, tz: ZoneInfo) -> tuple[float, float]:
    if key not in TIMEFRAME_KEYS:
        raise InvalidError(
            f"timeframe.key must be one of {', '.join(TIMEFRAME_KEYS)}",
            pointer=f"{_PTR}/timeframe/key",
        )
    today = datetime.fromtimestamp(now, tz).date()

    def at(d: date) -> float:
        return datetime.combine(d, time(), tz).timestamp()

    def month_start(d: date, back: int = 0) -> date:
        y, m = divmod(d.year * 12 + d.month - 1 - back, 12)
        return date(y, m + 1, 1)

    week = today - timedelta(days=today.weekday())
    spans: dict[str, tuple[date, date]] = {
        "today": (today, today + timedelta(1)),
        "yesterday": (today - timedelta(1), today),
        "this_week": (week, today + timedelta(1)),
        "last_week": (week - timedelta(7), week),
        "this_month": (month_start(today), today + timedelta(1)),
        "last_month": (month_start(today, 1), month_start(today)),
        "this_year": (date(today.year, 1, 1), today + timedelta(1)),
        "last_year": (date(today.year - 1, 1, 1), date(today.year, 1, 1)),
        "last_3_months": (month_start(today, 3), month_start(today)),
        "last_12_months": (month_start(today, 12), month_start(today)),
    }
    if key in spans:
        lo, hi = spans[key]
        return at(lo), at(hi)
    days = int(key.split("_")[1])
    return at(today - timedelta(days)), at(today)


def series_edges(interval: str, start: float, end: float, tz: ZoneInfo) -> list[float]:
    """Bucket starts of a series covering ``[start, end)``, plus the end of the last bucket.

    The first bucket starts on the interval's calendar boundary (in ``tz``) at
    or before ``start``; computing each boundary from the local date keeps days
    whole across daylight-saving changes.
    """
    local = datetime.fromtimestamp(start, tz)
    if interval == "hourly":
        first = local.replace(minute=0, second=0, microsecond=0).timestamp()
        edges = [first]
        while edges[-1] < end:
            edges.append(edges[-1] + 3600.0)
        return edges
    day = local.date()
    if interval == "weekly":
        day -= timedelta(days=day.weekday())
    elif interval == "monthly":
        day = day.replace(day=1)
    edges = [datetime.combine(day, time(), tz).timestamp()]
    while edges[-1] < end:
        if interval == "daily":
            day += timedelta(days=1)
        elif interval == "weekly":
            day += timedelta(days=7)
        else:
            y, m = divmod(day.month, 12)
            day = date(day.year + y, m + 1, 1)
        edges.append(datetime.combine(day, time(), tz).timestamp())
    return edges


def series_interval(value: Any, start: float, end: float) -> str:
    """A flow series report's ``interval``, refused when the timeframe is too long for it."""
    ptr = f"{_PTR}/interval"
    if value not in INTERVALS:
        raise InvalidError(
            f"interval is required, one of {', '.join(sorted(INTERVALS))}", pointer=ptr
        )
    if end - start > INTERVALS[value]:
        days = int(INTERVALS[value] // 86400)
        raise InvalidError(
            f"a {value} series spans at most {days} days; shorten the "
            "timeframe or use a longer interval",
            pointer=ptr,
        )
    return str(value)
