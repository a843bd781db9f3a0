"""Requests that reach the server later than the jitter allowance still never overrun a window.

The 10-account service benchmark drew 429s at moments when the machine stalled: a request
that arrived seconds after its send was counted in the windows at ``send + jitter``, so a
request sent a minute later could share the server's fixed window with it. Whatever the
delay, a request's arrival lies between its send and its response; these tests let it fall
anywhere in there.
"""

from __future__ import annotations

import asyncio
import heapq
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kbridge.api.ratestore import IN_FLIGHT_CAP, InProcessBudget, Take

pytestmark = pytest.mark.unit

JITTER = 0.25
POLL = 0.05  # the limiter's look-again while a request in flight decides the wait


def _fixed_window_max(arrivals: list[float], length: float, offset: float) -> int:
    counts: dict[int, int] = {}
    for t in arrivals:
        k = math.floor((t - offset) / length)
        counts[k] = counts.get(k, 0) + 1
    return max(counts.values(), default=0)


def _sliding_max(arrivals: list[float], length: float) -> int:
    ordered = sorted(arrivals)
    best, lo = 0, 0
    for hi, t in enumerate(ordered):
        while t - ordered[lo] >= length:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


async def _simulate(
    windows: tuple[int, int], requests: list[tuple[float, float, float]]
) -> tuple[list[float], float]:
    """Send ``requests`` (pause before, round trip, where in it the server got it) through
    one budget as the limiter does; answers come back at their time. Returns the arrivals
    and the time of the last send."""
    budget = InProcessBudget()
    now = 0.0
    answers: list[tuple[float, int, object]] = []  # (answered at, seq, ticket)
    arrivals: list[float] = []

    def advance_to(t: float) -> None:
        nonlocal now
        while answers and answers[0][0] <= t:
            at, _, ticket = heapq.heappop(answers)
            budget.release(ticket, at)
        now = t

    for seq, (pause, trip, where) in enumerate(requests):
        advance_to(now + pause)
        while True:
            taken = await budget.take(
                now=now, local_wait=0.0, windows=windows, jitter=JITTER, day="d", daily_cap=None
            )
            if taken.wait <= 1e-9:
                break
            advance_to(now + (min(taken.wait, POLL) if taken.held else taken.wait))
        arrivals.append(now + where * trip)
        heapq.heappush(answers, (now + trip, seq, taken.ticket))
    return arrivals, now


@settings(max_examples=100, deadline=None)
@given(
    windows=st.sampled_from([(3, 30), (1, 15), (2, 3), (10, 40)]),
    requests=st.lists(
        st.tuples(
            st.floats(0, 2, allow_nan=False),  # pause before the request
            st.floats(0, 5, allow_nan=False),  # its round trip, often far past the jitter
            st.floats(0, 1, allow_nan=False),  # where in the round trip the server got it
        ),
        min_size=1,
        max_size=120,
    ),
    burst_offset=st.floats(0, 1, exclude_max=True),
    steady_offset=st.floats(0, 60, exclude_max=True),
)
def test_fixed_windows_hold_however_late_a_request_arrives(
    windows: tuple[int, int],
    requests: list[tuple[float, float, float]],
    burst_offset: float,
    steady_offset: float,
) -> None:
    arrivals, _ = asyncio.run(_simulate(windows, requests))
    burst, steady = windows
    assert _fixed_window_max(arrivals, 1.0, burst_offset) <= burst
    assert _fixed_window_max(arrivals, 60.0, steady_offset) <= steady
    assert _sliding_max(arrivals, 1.0) <= burst
    assert _sliding_max(arrivals, 60.0) <= steady


@pytest.mark.anyio
async def test_a_stall_across_a_window_edge_does_not_let_the_next_minute_overrun() -> None:
    # What the benchmark met, at 1 a second and 2 a minute: the first request stalls
    # 1.5 s before the server counts it, in its next minute. The old bound (send + 0.25)
    # let the third request go at 60.25 s, into that same server minute.
    arrivals, _ = await _simulate((1, 2), [(0.0, 2.0, 0.75), (1.0, 0.01, 0.5), (0.0, 0.01, 0.5)])
    assert arrivals[0] == pytest.approx(1.5)
    assert arrivals[2] >= 2.0 + 60.0  # not before the first one's answer leaves the window


@pytest.mark.anyio
async def test_a_request_never_answered_stops_counting_after_the_cap() -> None:
    # A worker killed mid-request never releases its ticket; its slot must come back.
    budget = InProcessBudget()

    async def take(now: float) -> Take:
        return await budget.take(
            now=now, local_wait=0.0, windows=(1, 1), jitter=JITTER, day="d", daily_cap=None
        )

    first = await take(0.0)
    assert first.ticket is not None
    held = await take(100.0)
    assert held.held
    assert held.wait > 0
    freed = await take(IN_FLIGHT_CAP + 61.0)
    assert freed.wait == 0
    assert freed.ticket is not None
