"""Where a :class:`~kbridge.api.ratelimit.RateLimiter` keeps the budgets it may share.

Klaviyo meters each account, not each process: eight workers acting for one
account must stay under its limits together. The limiter therefore keeps the
two things every process must agree on, the sliding windows of requests sent
and the daily counts, in a :class:`RateBudgetStore`, one :class:`RateBudget`
per (account, group), and a 429's pause: Klaviyo refuses the account, so
every worker acting for it waits out ``Retry-After``. What a process learns
on its own (the token-bucket fallback, the server's ``RateLimit-Remaining``)
stays with it.

:class:`InProcessRateBudgetStore` is the default: plain Python lists, the
algorithm of the limiter's docstring, shared by the clients of one process.
A store that spans processes (kbridge's Redis store lives in
``kbridge.service.ratestore``; ``api`` never imports it) makes the same
decisions atomically for everyone who shares it.

A budget's :meth:`~RateBudget.take` is one atomic decision: given the local
wait the caller already has (a pause, a spent ``Remaining``), either the
windows and the daily cap let a request go *now*, and it is counted, or it
says how long to wait. The caller keeps per-budget FIFO order itself.
"""

from __future__ import annotations

import bisect
import heapq
from dataclasses import dataclass
from itertools import chain, islice
from operator import attrgetter
from typing import Protocol

from kbridge.core import KbridgeError

__all__ = [
    "BURST_WINDOW",
    "STEADY_WINDOW",
    "WINDOW_MARGIN",
    "InProcessRateBudgetStore",
    "RateBudget",
    "RateBudgetStore",
    "RateBudgetUnavailableError",
    "Take",
]

BURST_WINDOW = 1.0
STEADY_WINDOW = 60.0
#: Sliding windows are this much longer than Klaviyo's, so float rounding of the clock can
#: never put two requests a window apart into the same fixed window.
WINDOW_MARGIN = 1e-6
_EPSILON = 1e-9


class RateBudgetUnavailableError(KbridgeError):
    """The shared rate budget could not be reached for longer than allowed.

    Nothing was sent: a request never goes out unpaced. Retry later, once the
    store (e.g. Redis) is back.
    """


@dataclass(frozen=True, slots=True)
class Take:
    """What :meth:`RateBudget.take` decided.

    ``wait`` 0: the request was counted and may go; ``ticket`` is then passed to
    :meth:`RateBudget.release` when its response is in (``None``: nothing to
    release). ``wait`` > 0: nothing was counted; ``held`` says a request still in
    flight decides the wait (its response may shorten it). ``exhausted``: the
    daily cap is spent, nothing was counted. ``day_count`` is today's count as
    the store has it (after this request, when taken).
    """

    wait: float
    held: bool = False
    ticket: object | None = None
    day_count: int = 0
    exhausted: bool = False


class RateBudget(Protocol):
    """One (account, group)'s shared windows and daily count."""

    async def take(
        self,
        *,
        now: float,
        local_wait: float,
        windows: tuple[int, int] | None,
        jitter: float,
        day: str,
        daily_cap: int | None,
    ) -> Take:
        """Count a request at ``now`` if ``local_wait`` is spent and the ``(burst, steady)``
        windows (``None``: not paced) and ``daily_cap`` of ``day`` (a UTC date) allow it."""
        ...

    def release(self, ticket: object, now: float) -> None:
        """``ticket``'s request cannot reach the server after ``now`` (it was answered or
        failed). Best effort: a release that is lost only keeps waits conservative."""
        ...

    def pause(self, seconds: float, now: float) -> None:
        """The server refused a request at ``now`` for ``seconds`` (a 429's ``Retry-After``):
        every :meth:`take` waits until then. Best effort: a pause that is lost only lets
        another worker draw a 429 of its own, which pauses it."""
        ...


class RateBudgetStore(Protocol):
    """Hands out the :class:`RateBudget` of an (account, group)."""

    def budget(self, account: str, group: str) -> RateBudget:
        """The budget of ``group`` (an operation id or tier) on ``account``."""
        ...


_SENT = attrgetter("sent")


class _Stamp:
    """One request in the sliding windows: an upper bound of when the server got it."""

    __slots__ = ("arrived", "done", "sent")

    def __init__(self, sent: float, arrived: float) -> None:
        self.sent = sent
        self.arrived = arrived
        self.done = False


class InProcessBudget:
    """Sliding windows and a daily count in this process's memory."""

    __slots__ = ("day", "day_count", "head", "paused_until", "stamps")

    def __init__(self) -> None:
        # In send order; those before ``head`` can be in no window any more.
        self.stamps: list[_Stamp] = []
        self.head = 0
        self.day = ""
        self.day_count = 0
        self.paused_until = float("-inf")

    async def take(
        self,
        *,
        now: float,
        local_wait: float,
        windows: tuple[int, int] | None,
        jitter: float,
        day: str,
        daily_cap: int | None,
    ) -> Take:
        wait, held = max(local_wait, self.paused_until - now), False
        if windows is not None:
            self._forget(now, jitter)
            burst, steady = windows
            for length, limit in ((BURST_WINDOW, burst), (STEADY_WINDOW, steady)):
                window_wait, in_flight = self._window_wait(now, length, limit, jitter)
                if window_wait > wait:
                    wait, held = window_wait, in_flight
        if wait > _EPSILON:
            return Take(wait, held)
        if self.day != day:
            self.day, self.day_count = day, 0
        if daily_cap is not None and self.day_count >= daily_cap:
            return Take(0.0, day_count=self.day_count, exhausted=True)
        self.day_count += 1
        stamp = None
        if windows is not None:
            stamp = _Stamp(now, now + jitter)
            self.stamps.append(stamp)
        return Take(0.0, ticket=stamp, day_count=self.day_count)

    def release(self, ticket: object, now: float) -> None:
        if isinstance(ticket, _Stamp):
            ticket.arrived, ticket.done = min(ticket.arrived, now), True

    def pause(self, seconds: float, now: float) -> None:
        self.paused_until = max(self.paused_until, now + seconds)

    def usage(self, now: float) -> tuple[int, int]:
        """Requests in the sliding ``(burst, steady)`` windows ending at ``now``, as the
        windows count them (by the upper bound of each one's arrival).

        Safe to call from another thread than the one taking: it reads a copy.
        """
        stamps = self.stamps[self.head :]
        burst = steady = 0
        for stamp in stamps:
            age = now - stamp.arrived
            if age < STEADY_WINDOW + WINDOW_MARGIN:
                steady += 1
                if age < BURST_WINDOW + WINDOW_MARGIN:
                    burst += 1
        return burst, steady

    def _forget(self, now: float, jitter: float) -> None:
        """Drop requests that can no longer be in any window (they arrived by send + jitter)."""
        horizon = now - STEADY_WINDOW - WINDOW_MARGIN - jitter
        self.head = bisect.bisect_right(self.stamps, horizon, lo=self.head, key=_SENT)
        if self.head > 1024 and 2 * self.head > len(self.stamps):
            del self.stamps[: self.head]
            self.head = 0

    def _window_wait(
        self, now: float, length: float, limit: int, jitter: float
    ) -> tuple[float, bool]:
        """How long until fewer than ``limit`` requests are in the sliding window of
        ``length`` ending then; and whether the request that decides it is in flight.

        A request arrives between its send and its send + jitter, and sends are in
        order, so only those sent within the jitter before the window's start need a
        look: the rest are wholly in or out. That keeps a 3,500-a-minute tier from
        walking its whole minute on every request.
        """
        span = length + WINDOW_MARGIN
        cutoff = now - span
        stamps = self.stamps
        first_in = bisect.bisect_right(stamps, cutoff, lo=self.head, key=_SENT)
        first_maybe = bisect.bisect_right(
            stamps, cutoff - jitter, lo=self.head, hi=first_in, key=_SENT
        )
        edge = [st for st in islice(stamps, first_maybe, first_in) if st.arrived > cutoff]
        count = len(edge) + len(stamps) - first_in
        if count < limit:
            return 0.0, False
        # Room comes when the k-th earliest arrival inside leaves, k = count - limit + 1. A
        # request sent after the k-th earliest arrival so far cannot arrive before it.
        k = count - limit + 1
        earliest: list[tuple[float, int]] = []  # max-heap of the k earliest: (-arrived, i)
        candidates = list(chain(edge, islice(stamps, first_in, None)))
        for i, st in enumerate(candidates):
            if len(earliest) == k and st.sent >= -earliest[0][0]:
                break
            if len(earliest) < k:
                heapq.heappush(earliest, (-st.arrived, i))
            elif st.arrived < -earliest[0][0]:
                heapq.heapreplace(earliest, (-st.arrived, i))
        deciding = candidates[earliest[0][1]]
        return deciding.arrived + span - now, not deciding.done


class InProcessRateBudgetStore:
    """Budgets in this process's memory: what a limiter uses unless given another store."""

    def __init__(self) -> None:
        self._budgets: dict[tuple[str, str], InProcessBudget] = {}

    def budget(self, account: str, group: str) -> InProcessBudget:
        key = (account, group)
        found = self._budgets.get(key)
        if found is None:
            found = self._budgets[key] = InProcessBudget()
        return found

    def groups(self, account: str) -> dict[str, InProcessBudget]:
        """The budgets of ``account`` by group: what a dashboard reads."""
        return {group: b for (owner, group), b in list(self._budgets.items()) if owner == account}

    def __repr__(self) -> str:
        return f"InProcessRateBudgetStore({len(self._budgets)} budgets)"
