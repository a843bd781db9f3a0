from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest

from kbridge.core import Clock, ManualClock, SystemClock
from kbridge.core.clock import utc

pytestmark = pytest.mark.unit


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    t0, m0 = clock.now(), clock.monotonic()
    assert clock.now() == t0
    clock.advance(90)
    assert clock.now() - t0 == timedelta(seconds=90)
    assert clock.monotonic() - m0 == 90
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)


def test_manual_clock_sleep_advances_and_records() -> None:
    clock = ManualClock()
    asyncio.run(clock.sleep(2.5))
    asyncio.run(clock.sleep(0))
    assert clock.slept == [2.5]
    assert clock.monotonic() == 2.5


def test_both_clocks_satisfy_the_protocol() -> None:
    assert isinstance(SystemClock(), Clock)
    assert isinstance(ManualClock(), Clock)
    assert SystemClock().now().tzinfo is not None


def test_naive_datetimes_are_refused_not_guessed() -> None:
    with pytest.raises(ValueError, match="naive"):
        utc(datetime(2026, 1, 1))  # noqa: DTZ001
    plus_two = timezone(timedelta(hours=2))
    assert utc(datetime(2026, 1, 1, 2, tzinfo=plus_two)) == datetime(2026, 1, 1, tzinfo=UTC)
