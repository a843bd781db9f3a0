"""Time slices for large histories (events), aligned so a resumed run plans the same ones.

Slices start at multiples of ``days`` since :data:`EPOCH_FLOOR`, whatever the
lower bound, so a run that crashed and is restarted later (with a later
``upper``) finds the same slice names and their bookmarks; only the last
slice grows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from kbridge.sync.state import EPOCH_FLOOR, format_ts

__all__ = ["Window", "plan_windows"]


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
