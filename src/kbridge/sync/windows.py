"""Time slices for large histories (events), aligned so a resumed run plans the same ones,
and where a report stream's day-by-day backfill stands.

Slices start at multiples of ``days`` since :data:`EPOCH_FLOOR`, whatever the
lower bound, so a run that crashed and is restarted later (with a later
``upper``) finds the same slice names and their bookmarks; only the last
slice grows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from kbridge.sync.state import EPOCH_FLOOR, format_ts

__all__ = ["ReportProgress", "Window", "plan_windows"]


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime

    @property
    def name(self) -> str:
        """Partition name of this slice's bookmark (depends on its start only)."""
        return "slice:" + format_ts(self.start)


def plan_windows(lower: datetime, upper: datetime, days: int) -> list[Window]:
    """Aligned windows covering ``[lower, upper)``; the first starts at ``lower`` itself."""
    if days <= 0:
        raise ValueError("days must be positive")
    if upper <= lower:
        return []
    step = timedelta(days=days)
    n = (lower - EPOCH_FLOOR) // step
    boundary = EPOCH_FLOOR + step * (n + 1)
    out: list[Window] = []
    start = lower
    while start < upper:
        end = min(boundary, upper)
        out.append(Window(start, end))
        start, boundary = end, boundary + step
    return out


@dataclass(frozen=True, slots=True)
class ReportProgress:
    """Where a report stream's backfill stands, told once it is planned and after every
    request: ``text`` is what a progress display shows ("day 120 of 365, ~9 min left")."""

    stream: str
    #: days of the range read so far, of ``days``: the first day not read yet (or the
    #: start date) up to yesterday, the days the daily cap defers included
    day: int
    days: int
    #: requests left of those today's budget allows, and the time they take at the pace
    #: the client keeps (None: not known yet)
    requests_left: int
    seconds_left: float | None
    #: days of the range that wait for the next day's budget
    deferred: int = 0

    @property
    def text(self) -> str:
        later = f", {self.deferred} days after the daily cap resets" if self.deferred else ""
        if self.requests_left > 0:
            return f"day {self.day} of {self.days}{_time_left(self.seconds_left)}{later}"
        return f"day {self.day} of {self.days}{later or ', done'}"


def _time_left(seconds: float | None) -> str:
    """``", ~9 min left"``, ``", ~1 h 52 min left"`` (whole minutes, rounded up: a promise
    kept is better than one a minute short); empty when unknown."""
    if seconds is None:
        return ""
    minutes = max(1, math.ceil(seconds / 60))
    if minutes < 60:
        return f", ~{minutes} min left"
    hours, minutes = divmod(minutes, 60)
    return f", ~{hours} h {minutes} min left" if minutes else f", ~{hours} h left"
