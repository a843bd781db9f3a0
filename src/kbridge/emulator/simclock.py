"""Simulated time: real time plus an offset that ``POST /_emulator/clock`` moves on.

Jobs, scheduled sends and token expiry run on this clock; rate-limit windows
run on the real monotonic clock (they pace real requests).
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from kbridge.core.clock import Clock, SystemClock

__all__ = ["SimClock"]


class SimClock:
    def __init__(self, base: Clock | None = None, *, start: datetime | None = None) -> None:
        self._base = base or SystemClock()
        self._lock = threading.Lock()
        self._offset = timedelta(0)
        if start is not None:
            self._offset = start - self._base.now()

    def now(self) -> datetime:
        with self._lock:
            return self._base.now() + self._offset

    def monotonic(self) -> float:
        return self._base.monotonic()

    async def sleep(self, seconds: float) -> None:
        await self._base.sleep(seconds)

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("simulated time cannot go backwards")
        with self._lock:
            self._offset += timedelta(seconds=seconds)
        return self.now()
