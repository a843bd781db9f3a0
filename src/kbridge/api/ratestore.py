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
import threading
from dataclasses import dataclass
from itertools import chain, islice
from operator import attrgetter
from typing import Protocol

from kbridge.core import KbridgeError

__all__ = [
    "BURST_WINDOW",
    "IN_FLIGHT_CAP",
    "STEADY_WINDOW",
    "WINDOW_MARGIN",
    "AccountBudgets",
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
#: A request in flight may reach the server at any moment until it is answered; one not
#: answered this long after its send belongs to a process that died (an attempt gives up
#: after 120 s), and stops holding its place in the windows.
IN_FLIGHT_CAP = 180.0
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

    __slots__ = ("arrived", "done", "late", "sent")

    def __init__(self, sent: float, arrived: float) -> None:
        self.sent = sent
        self.arrived = arrived
        self.done = False
        #: its bound passed send + jitter: a window may hold it whatever its send
        self.late = False


class InProcessBudget:
    """Sliding windows and a daily count in this process's memory.

    Safe to share between threads (the service's worker threads run one event loop
    each): every decision holds a lock, and none awaits while it does.
    """

    __slots__ = ("_lock", "day", "day_count", "flying", "head", "late", "paused_until", "stamps")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # In send order; those before ``head`` can be in no window any more, unless late.
        self.stamps: list[_Stamp] = []
        self.head = 0
        #: requests not yet answered, and those whose bound passed send + jitter
        self.flying: set[_Stamp] = set()
        self.late: list[_Stamp] = []
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
        with self._lock:
            return self._take(now, local_wait, windows, jitter, day, daily_cap)

    def _take(
        self,
        now: float,
        local_wait: float,
        windows: tuple[int, int] | None,
        jitter: float,
        day: str,
        daily_cap: int | None,
    ) -> Take:
        wait, held = max(local_wait, self.paused_until - now), False
        if windows is not None:
            self._overdue(now)
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
            self.flying.add(stamp)
        return Take(0.0, ticket=stamp, day_count=self.day_count)

    def release(self, ticket: object, now: float) -> None:
        with self._lock:
            if isinstance(ticket, _Stamp) and ticket in self.flying:
                # it reached the server by its answer, however long after send + jitter
                self.flying.discard(ticket)
                self._bound(ticket, now)
                ticket.arrived, ticket.done = now, True

    def pause(self, seconds: float, now: float) -> None:
        with self._lock:
            self.paused_until = max(self.paused_until, now + seconds)

    def _bound(self, stamp: _Stamp, arrived: float) -> None:
        if arrived > stamp.arrived and not stamp.late:
            stamp.late = True
            self.late.append(stamp)

    def _overdue(self, now: float) -> None:
        """A request still in flight may reach the server at any moment: count it at now.

        Stalls (a loaded machine, a slow network) can hold a request back for longer than
        the jitter allowance; counted at send + jitter, a request sent a minute later could
        share the server's fixed window with it. Past :data:`IN_FLIGHT_CAP` it is taken
        for lost (its process died) and its place stops moving.
        """
        for stamp in list(self.flying):
            bound = min(now, stamp.sent + IN_FLIGHT_CAP)
            if bound > stamp.arrived:
                self._bound(stamp, bound)
                stamp.arrived = bound
            if now >= stamp.sent + IN_FLIGHT_CAP:
                self.flying.discard(stamp)
                stamp.done = True

    def usage(self, now: float) -> tuple[int, int]:
        """Requests in the sliding ``(burst, steady)`` windows ending at ``now``, as the
        windows count them (by the upper bound of each one's arrival; one still in flight
        counts as arriving now). Safe to call from another thread than the one taking."""
        with self._lock:
            stamps = {*self.stamps[self.head :], *self.late, *self.flying}
            burst = steady = 0
            for stamp in stamps:
                arrived = max(stamp.arrived, now) if not stamp.done else stamp.arrived
                age = now - arrived
                if age < STEADY_WINDOW + WINDOW_MARGIN:
                    steady += 1
                    if age < BURST_WINDOW + WINDOW_MARGIN:
                        burst += 1
            return burst, steady

    def _forget(self, now: float, jitter: float) -> None:
        """Drop requests that can no longer be in any window (they arrived by send + jitter,
        or are late and left the longest window)."""
        horizon = now - STEADY_WINDOW - WINDOW_MARGIN - jitter
        self.head = bisect.bisect_right(self.stamps, horizon, lo=self.head, key=_SENT)
        if self.head > 1024 and 2 * self.head > len(self.stamps):
            del self.stamps[: self.head]
            self.head = 0
        if self.late:
            gone = now - STEADY_WINDOW - WINDOW_MARGIN
            self.late = [st for st in self.late if not st.done or st.arrived > gone]

    def _window_wait(
        self, now: float, length: float, limit: int, jitter: float
    ) -> tuple[float, bool]:
        """How long until fewer than ``limit`` requests are in the sliding window of
        ``length`` ending then; and whether the request that decides it is in flight.

        A request's bound is its send + jitter unless it is late (kept apart, and few),
        and sends are in order, so only those sent within the jitter before the window's
        start need a look: the rest are wholly in or out. That keeps a 3,500-a-minute
        tier from walking its whole minute on every request.
        """
        span = length + WINDOW_MARGIN
        cutoff = now - span
        stamps = self.stamps
        first_in = bisect.bisect_right(stamps, cutoff, lo=self.head, key=_SENT)
        first_maybe = bisect.bisect_right(
            stamps, cutoff - jitter, lo=self.head, hi=first_in, key=_SENT
        )
        edge = [st for st in islice(stamps, first_maybe, first_in) if st.arrived > cutoff]
        if self.late:
            # sent before the edge yet still inside: in send order, ahead of the edge
            early = sorted(
                (st for st in self.late if st.sent <= cutoff - jitter and st.arrived > cutoff),
                key=_SENT,
            )
            edge = early + edge
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
    """Budgets in this process's memory: what a limiter uses unless given another store.

    One store may be shared by the limiters of several threads. :meth:`for_account`
    binds a view of it to one Klaviyo account, as the Redis store's ``account_id``
    does: every key of that account then draws on one budget.
    """

    def __init__(self) -> None:
        self._budgets: dict[tuple[str, str], InProcessBudget] = {}
        self._lock = threading.Lock()

    def budget(self, account: str, group: str) -> InProcessBudget:
        key = (account, group)
        found = self._budgets.get(key)
        if found is None:
            with self._lock:
                found = self._budgets.setdefault(key, InProcessBudget())
        return found

    def budgets_of(self, account: str) -> dict[str, InProcessBudget]:
        """The budgets keyed by ``account`` (a fingerprint, or a bound view's owner)."""
        with self._lock:
            return {group: b for (owner, group), b in self._budgets.items() if owner == account}

    def for_account(self, account_id: str) -> AccountBudgets:
        """This store's budgets of ``account_id``, whatever credential a limiter holds."""
        return AccountBudgets(self, account_id)

    def __repr__(self) -> str:
        return f"InProcessRateBudgetStore({len(self._budgets)} budgets)"


class AccountBudgets:
    """An :class:`InProcessRateBudgetStore` seen from one Klaviyo account."""

    __slots__ = ("_account_id", "_store")

    def __init__(self, store: InProcessRateBudgetStore, account_id: str) -> None:
        self._store = store
        self._account_id = account_id

    def budget(self, account: str, group: str) -> InProcessBudget:
        return self._store.budget(self._owner, group)

    @property
    def _owner(self) -> str:
        # keyed apart from fingerprints, which are hashes of credentials
        return f"account:{self._account_id}"

    def groups(self) -> dict[str, InProcessBudget]:
        """This account's budgets by group (an operation, or a tier): what a dashboard reads."""
        return self._store.budgets_of(self._owner)

    def __repr__(self) -> str:
        return f"AccountBudgets({self._account_id!r})"
