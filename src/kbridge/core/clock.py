"""Time, injectable. Nothing else in kbridge calls ``datetime.now()`` or ``time.*``.

Two readings are kept apart: wall time (``now()``, timezone-aware UTC, for
data) and a monotonic reading (``monotonic()``, seconds, for pacing and
deadlines). ``sleep()`` is async because the client's core is async.
:class:`ManualClock` lets tests (and the emulator's simulated time) move time
on by hand, so no test depends on how fast the machine is.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "SystemClock", "utc"]


def utc(dt: datetime) -> datetime:
    """``dt`` as an aware UTC datetime; a naive one is refused, never guessed."""
    if dt.tzinfo is None:
        raise ValueError(f"naive datetime {dt.isoformat()} has no timezone; give one (e.g. UTC)")
    return dt.astimezone(UTC)


@runtime_checkable
class Clock(Protocol):
    def now(self) -> datetime:
        """Current wall time, aware, UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never goes backwards."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (no-op for ``<= 0``)."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        # imported here: a running loop has loaded asyncio already, and `kbridge --help`
        # (which imports the clock through kbridge.core) need not pay ~50 ms for it
        import asyncio

        if seconds > 0:
            await asyncio.sleep(seconds)
        else:
            await asyncio.sleep(0)

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that moves only when told to (or when something sleeps on it).

    ``sleep()`` advances the clock by the requested amount at once and yields
    to the event loop, so code that paces itself runs instantly in tests while
    seeing exactly the waits it asked for. ``slept`` records them.
    """

    def __init__(self, start: datetime | None = None, *, auto_advance: bool = True) -> None:
        self._wall = utc(start) if start is not None else datetime(2026, 1, 1, tzinfo=UTC)
        self._mono = 0.0
        self.auto_advance = auto_advance
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self._wall

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._mono += seconds
        self._wall += timedelta(seconds=seconds)

    def set_now(self, when: datetime) -> None:
        """Jump wall time forward to ``when`` (monotonic time follows)."""
        delta = (utc(when) - self._wall).total_seconds()
        self.advance(max(0.0, delta))

    async def sleep(self, seconds: float) -> None:
        import asyncio

        if seconds > 0:
            self.slept.append(seconds)
            if self.auto_advance:
                self.advance(seconds)
        await asyncio.sleep(0)

    def __repr__(self) -> str:
        return f"ManualClock(now={self._wall.isoformat()}, monotonic={self._mono:.3f})"
