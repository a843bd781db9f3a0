"""Client-side pacing that stays under Klaviyo's limits without wasting them.

Klaviyo meters each endpoint per account with a 1-second (burst) and a
60-second (steady) window, a few endpoints with a daily cap, and some query
parameters with an extra, stricter limit. The windows are fixed and aligned
to the server's clock, which we cannot see.

*Two sliding windows* pace every bucket: a request may go when fewer than
``burst`` requests went in the last second and fewer than ``steady`` in the
last minute. Any fixed window, wherever it is aligned, lies inside one of
those sliding windows, so no fixed window can be overrun; and since a
sliding-window schedule sends at most ``L + L*T/W`` requests in any interval
of length ``T``, a leaky bucket of capacity ``L`` draining at ``L/W`` never
overflows either. Unlike a token bucket with ``C + 60r <= steady`` (safe, but
it spends the steady rate from the first request), the windows let a short
run go at the burst limit: 30 requests at 3/s, 30/min take ~10 s, not 60.

Requests reach the server later than we send them, and by varying delays,
so each request is counted in the windows at an upper bound of its arrival:
its response time once it came back (it cannot have arrived later), and
``jitter_allowance`` after its send while it is still in flight. Once a
response is in, no margin is needed at all; a waiter that is held up by a
request still in flight looks again after a short poll.

The server's ``RateLimit-Remaining``/``Reset`` (its count for the current
steady window, which another integration on the account may share) cap how
many more requests go out before that window resets; a lower
``RateLimit-Limit`` than the catalogue's lowers our limits. They never loosen
the windows: Klaviyo calls ``Remaining`` approximate and ``Reset`` is whole
seconds.

*Falling back to a token bucket.* Some integrators describe Klaviyo as a
leaky bucket of a different shape, and another integration may spend the
same quota. A 429 is then a refusal the windows did not predict: the bucket
that got it switches, for the rest of the limiter's life, to a token bucket
(GCRA) with rate ``r`` and capacity ``C``, which lets through at most
``floor(C + r*T)`` requests in any interval of length ``T``; ``C + 60r <=
steady`` and ``C + r <= burst`` (each window widened by the jitter
allowance) keep it under fixed windows at any alignment and under a leaky
bucket draining at ``steady/60``. Its rate is ``target × steady/60`` (target
0.95 by default); each 429 pauses it for ``Retry-After``, and each one after
the fallback halves its rate, which then recovers additively.
:attr:`RateLimiter.fallbacks` names the buckets that fell back, so a summary
can say so. Daily caps are counted per UTC day and raise
:class:`QuotaExhaustedError` instead of waiting hours.

Servers other than Klaviyo (``LimiterConfig.limit_factor``): a factor scales
the catalogue's burst and steady limits (e.g. 0.05 for the emulator at
``--rate-limits 0.05``), so the client paces to that server from its first
request instead of learning the lower limits from its headers; ``None`` is a
server without limits: no pacing at all, yet a 429 still pauses for
``Retry-After``, a ``RateLimit-Remaining`` budget still holds and daily caps
still count. :func:`parse_limit_factor` reads the CLI's ``spec|off|FACTOR``.

All time comes from the injected :class:`~kbridge.core.Clock`; buckets are
shared by every task of a client and served first come, first served.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from kbridge.api.errors import ErrorDetails, QuotaExhaustedError, parse_retry_after
from kbridge.api.ratestore import (
    BURST_WINDOW,
    STEADY_WINDOW,
    InProcessRateBudgetStore,
    RateBudget,
    RateBudgetStore,
)
from kbridge.catalog import Operation, RateLimit
from kbridge.core import Clock, ConfigurationError

__all__ = [
    "DEFAULT_LIMIT",
    "BucketState",
    "DailyBudget",
    "LimiterConfig",
    "PacingMode",
    "Permit",
    "RateLimiter",
    "pacing",
    "parse_limit_factor",
    "parse_rate_limit_header",
    "window_allowance",
]

Grouping = Literal["endpoint", "tier"]
#: how a bucket paces: Klaviyo's documented windows, or the token bucket it fell back to
PacingMode = Literal["windows", "token-bucket"]

#: For paths the catalogue does not know: Klaviyo's smallest published tier.
DEFAULT_LIMIT = RateLimit(burst=1, steady=15)

_EPSILON = 1e-9
_BURST_WINDOW = BURST_WINDOW
_STEADY_WINDOW = STEADY_WINDOW
#: How often a waiter held up by a request still in flight looks again: its response may
#: come back and show it arrived earlier than the jitter allowance assumed.
_IN_FLIGHT_POLL = 0.05


@dataclass(frozen=True, kw_only=True, slots=True)
class LimiterConfig:
    """How hard to drive the limits and how to react when the server pushes back.

    ``grouping="endpoint"`` gives each operation its own buckets (Klaviyo
    meters per endpoint); ``"tier"`` shares one bucket among operations with
    identical limits, a conservative choice if the account's quota turns out
    to be shared more widely. ``jitter_allowance`` is how much closer
    together (seconds) two requests may arrive than they were sent, e.g.
    through varying network delay: a request still in flight counts in the
    windows as if it arrived that long after it was sent (one whose response
    came back counts at that moment), and the token-bucket fallback leaves
    room for it. ``target_utilisation`` is the token bucket's share of the
    steady limit; the windows themselves are filled exactly.

    ``limit_factor`` says what the server enforces as a multiple of the
    catalogue's published limits: ``1.0`` is Klaviyo; ``0.05`` a server at a
    twentieth of them (the emulator's ``--rate-limits 0.05``); ``None`` a
    server with no limits (the emulator's ``--rate-limits off``), against
    which the client does not pace at all. The factor scales the burst and
    steady limits of every bucket (the operation's, its alt limits' and
    ``default_limit``), each rounded down but never below 1 request per
    window, as the emulator rounds. Daily caps are not scaled: a day's
    quota is not a pace, a factor below 1 used to leave room for another
    integration must not refuse work Klaviyo would accept, and a server
    whose caps are lower says so (a 429 with a day-long ``Retry-After``
    becomes :class:`QuotaExhaustedError` as with Klaviyo); ``daily_caps``
    sets them explicitly. With ``None``, 429s, ``RateLimit-Remaining`` and
    daily caps are honoured as always.
    """

    target_utilisation: float = 0.95
    jitter_allowance: float = 0.25
    grouping: Grouping = "endpoint"
    decrease_factor: float = 0.5
    min_rate_factor: float = 0.1
    recovery_per_second: float = 0.01
    pause_without_retry_after: float = 1.0
    default_limit: RateLimit = DEFAULT_LIMIT
    #: daily caps by operation id, replacing the catalogue's (an account whose caps differ,
    #: or a test); ``None`` removes a cap
    daily_caps: Mapping[str, int | None] = field(default_factory=dict)
    #: the server's limits as a multiple of the catalogue's; ``None``: it has none (no pacing)
    limit_factor: float | None = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.target_utilisation <= 1:
            raise ConfigurationError("target_utilisation must be in (0, 1], e.g. 0.95")
        if not 0 <= self.jitter_allowance <= 10:
            raise ConfigurationError("jitter_allowance must be between 0 and 10 seconds")
        if self.grouping not in ("endpoint", "tier"):
            raise ConfigurationError("grouping must be 'endpoint' or 'tier'")
        if not 0 < self.decrease_factor < 1 or not 0 < self.min_rate_factor <= 1:
            raise ConfigurationError("decrease_factor must be in (0, 1), min_rate_factor in (0, 1]")
        if any(cap is not None and cap < 0 for cap in self.daily_caps.values()):
            raise ConfigurationError("daily_caps: a cap must be a non-negative count (or None)")
        factor = self.limit_factor
        if factor is not None and not (factor > 0 and math.isfinite(factor)):
            raise ConfigurationError(
                f"limit_factor must be a positive number such as 0.5 (1 = Klaviyo's limits), "
                f"or None for a server without limits; got {factor!r}"
            )


def parse_limit_factor(text: str) -> float | None:
    """``"spec"`` → ``1.0``, ``"off"`` → ``None``, ``"0.05"`` → ``0.05``: a ``--rate-limits`` value.

    The one reading of ``spec|off|FACTOR`` shared by ``kbridge sync`` (what the
    client paces to, :attr:`LimiterConfig.limit_factor`) and ``kbridge
    emulator serve`` (what the server enforces). Anything else raises
    :class:`~kbridge.core.ConfigurationError` (a ``ValueError``) whose message
    reads on after the option's name: ``f"--rate-limits {exc}"``.
    """
    lowered = text.strip().lower()
    if lowered == "spec":
        return 1.0
    if lowered == "off":
        return None
    try:
        factor = float(lowered)
    except ValueError:
        raise ConfigurationError(
            f"must be 'spec', 'off' or a positive factor such as 0.5, got {text!r}"
        ) from None
    if not (factor > 0 and math.isfinite(factor)):
        raise ConfigurationError(f"factor must be a positive number, got {text!r}")
    return factor


def _scaled(limit: RateLimit, factor: float) -> RateLimit:
    """``limit`` with burst and steady × ``factor`` (floor, at least 1); the daily cap kept."""
    if factor == 1.0:
        return limit
    return RateLimit(
        burst=max(1, math.floor(limit.burst * factor + _EPSILON)),
        steady=max(1, math.floor(limit.steady * factor + _EPSILON)),
        daily=limit.daily,
    )


def pacing(limit: RateLimit, target: float, jitter: float = 0.0) -> tuple[float, int]:
    """``(rate per second, capacity)`` for a bucket that can never overrun ``limit``.

    ``floor(C + r*T)`` bounds the requests in any interval of length ``T``.
    Requests sent ``T`` apart may arrive up to ``jitter`` seconds closer
    together, so we keep the bound within the burst limit for ``T = 1 + jitter``
    and within the steady limit for ``T = 60 + jitter``.
    """
    short, long = 1.0 + jitter, _STEADY_WINDOW + jitter
    rate = min(target * limit.steady / _STEADY_WINDOW, target * limit.burst)
    capacity = math.floor(min(limit.steady - long * rate, limit.burst - short * rate) + _EPSILON)
    if capacity < 1:
        capacity = 1
        # With one token the bound is floor(1 + r*T): keep r*T strictly below each limit.
        strict = 1 - 1e-6
        rate = min(rate, strict * limit.steady / long, strict * limit.burst / short)
    return rate, capacity


_LIMIT_ITEM = re.compile(r"(\d+)\s*(?:;\s*w\s*=\s*(\d+))?")


def parse_rate_limit_header(value: str | None) -> list[tuple[int, int | None]]:
    """``RateLimit-Limit`` as ``[(quota, window seconds or None)]``, leniently.

    Accepts ``"750"``, ``"750;w=60"`` and ``"75;w=1, 750;w=60, 225;w=86400"``;
    anything unreadable is skipped.
    """
    if not value:
        return []
    items: list[tuple[int, int | None]] = []
    for part in value.split(","):
        m = _LIMIT_ITEM.search(part)
        if m:
            items.append((int(m.group(1)), int(m.group(2)) if m.group(2) else None))
    return items


def _first_number(value: str | None) -> float | None:
    if value is None:
        return None
    m = re.search(r"\d+(?:\.\d+)?", value)
    return float(m.group()) if m else None


def _next_utc_midnight(now: datetime) -> datetime:
    day = now.astimezone(UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class DailyBudget:
    """What is left today of an operation's daily cap, as this limiter has counted it."""

    cap: int | None
    used: int
    remaining: int
    resets_at: datetime


@dataclass(frozen=True, slots=True)
class BucketState:
    """A snapshot of one bucket (for tests, logs and benchmarks).

    ``limit`` is what the bucket paces to (the catalogue's scaled by
    ``limit_factor``, lowered by the server's headers); with ``limit_factor``
    ``None`` nothing is paced and ``rate`` is ``inf``. ``rate`` and
    ``capacity`` are the token bucket's, which paces only in ``mode``
    ``"token-bucket"``.
    """

    key: str
    limit: RateLimit
    rate: float
    capacity: int
    rate_factor: float
    paused_until: float
    budget: int | None
    daily_used: int
    limit_factor: float | None = 1.0
    #: ``"windows"``, or ``"token-bucket"`` after a 429 the windows did not predict
    mode: PacingMode = "windows"


class _Bucket:
    """Sliding-window (or, after a fallback, GCRA) state for one (account, group), plus its
    adaptive and daily parts."""

    def __init__(
        self,
        key: str,
        limit: RateLimit,
        config: LimiterConfig,
        budget: RateBudget,
        *,
        shared: bool = False,
    ) -> None:
        self.key = key
        #: the windows and daily count, which every process acting for the account shares
        self.budget = budget
        #: others draw on the budget too: after a fallback, keep counting in (and obeying)
        #: the shared windows, or our requests would be invisible to them
        self.shared = shared
        self.config = config
        # None: the server has no limits, so neither does the token bucket (tat stays None)
        self.paced = config.limit_factor is not None
        self.lock = asyncio.Lock()
        self.limit = limit
        self.base_rate, self.capacity = pacing(
            limit, config.target_utilisation, config.jitter_allowance
        )
        self.mode: PacingMode = "windows"
        self.tat: float | None = None  # theoretical arrival time; None = bucket full
        self.paused_until = -math.inf
        self.factor_cut: tuple[float, float] | None = None  # (factor, when)
        self.budget_left: int | None = None  # RateLimit-Remaining, less what went since
        self.budget_until = -math.inf
        self.in_flight = 0
        self.day: Any = None
        self.day_count = 0
        self.day_key = ""
        self.exhausted_until: datetime | None = None

    # -- pacing ---------------------------------------------------------------
    @property
    def tau(self) -> float:
        """Burst tolerance in seconds, fixed by the base rate so a slower rate never widens it."""
        return (self.capacity - 1) / self.base_rate

    def factor(self, now: float) -> float:
        if self.factor_cut is None:
            return 1.0
        value, when = self.factor_cut
        recovered = value + self.config.recovery_per_second * max(0.0, now - when)
        if recovered >= 1.0:
            self.factor_cut = None
            return 1.0
        return recovered

    def rate(self, now: float) -> float:
        return self.base_rate * self.factor(now)

    def local_delay(self, now: float) -> float:
        """Seconds this process's own knowledge holds the next request back: a 429's pause,
        a spent ``RateLimit-Remaining``, the token bucket after a fallback. The shared
        windows are the budget's to judge (:meth:`windows`)."""
        wait = self.paused_until - now
        if self.budget_left is not None and now < self.budget_until and self.budget_left <= 0:
            wait = max(wait, self.budget_until - now)
        if not (self.paced and self.mode == "windows") and self.tat is not None:
            wait = max(wait, self.tat - self.tau - now)
        return max(0.0, wait)

    def windows(self) -> tuple[int, int] | None:
        """``(burst, steady)`` the shared sliding windows pace to; ``None``: they do not."""
        if self.paced and (self.mode == "windows" or self.shared):
            return self.limit.burst, self.limit.steady
        return None

    def consume(self, now: float, day_count: int) -> None:
        """The budget counted a request at ``now``; ``day_count`` is today's count there."""
        if self.paced and self.mode != "windows":
            start = now if self.tat is None else max(self.tat, now)
            self.tat = start + 1.0 / self.rate(now)
        self.in_flight += 1
        if self.budget_left is not None and now < self.budget_until:
            self.budget_left -= 1
        self.day_count = day_count

    # -- daily cap ------------------------------------------------------------
    def roll_day(self, wall: datetime) -> None:
        """Start a new count at UTC midnight; forget a server-reported exhaustion once over."""
        today = wall.astimezone(UTC).date()
        if self.day != today:
            self.day, self.day_count = today, 0
            self.day_key = today.isoformat()
        if self.exhausted_until is not None and wall >= self.exhausted_until:
            self.exhausted_until = None

    def daily_budget(self, wall: datetime) -> DailyBudget:
        self.roll_day(wall)
        if self.exhausted_until is not None:
            return DailyBudget(self.limit.daily, self.day_count, 0, self.exhausted_until)
        cap = self.limit.daily
        remaining = max(0, cap - self.day_count) if cap is not None else 2**31
        return DailyBudget(cap, self.day_count, remaining, _next_utc_midnight(wall))

    def check_daily(self, wall: datetime, operation_id: str | None) -> None:
        self.roll_day(wall)
        if self.exhausted_until is not None:
            resets_at: datetime | None = self.exhausted_until
        elif self.limit.daily is not None and self.day_count >= self.limit.daily:
            resets_at = _next_utc_midnight(wall)
        else:
            return
        assert resets_at is not None
        raise QuotaExhaustedError(
            ErrorDetails(
                status=None,
                code="daily_quota_exhausted",
                detail=(
                    f"the daily cap of {self.limit.daily} requests for this operation is spent"
                    if self.limit.daily is not None
                    else "Klaviyo reported this operation's quota as spent"
                ),
                operation_id=operation_id,
            ),
            resets_at=resets_at,
            retry_after=(resets_at - wall).total_seconds(),
        )

    def mark_exhausted(self, until: datetime) -> None:
        self.exhausted_until = until

    # -- adaptation -----------------------------------------------------------
    def throttled(self, now: float, retry_after: float | None) -> None:
        """A 429: pause for Retry-After, restart without a burst; under the token bucket
        also cut the rate (once per pause).

        The windows never send what a fixed-window server refuses, so under them a 429
        means the server is not that (a leaky bucket, or a quota shared with someone
        else): the bucket falls back to the token bucket at its full rate, the model that
        is safe under a leaky bucket; only a 429 under that model cuts its rate.
        Unpaced (``limit_factor=None``) only the pause applies: there is no rate to cut.
        """
        already_paused = now < self.paused_until
        pause = retry_after if retry_after is not None else self.config.pause_without_retry_after
        self.paused_until = max(self.paused_until, now + pause)
        if not self.paced:
            return
        if self.mode == "windows":
            if pause > _STEADY_WINDOW + _BURST_WINDOW:
                return  # a daily quota spent (by anyone), not a window overrun
            self.mode = "token-bucket"
        elif not already_paused:
            cut = max(self.config.min_rate_factor, self.factor(now) * self.config.decrease_factor)
            self.factor_cut = (cut, self.paused_until)
        self.tat = max(self.tat if self.tat is not None else now, self.paused_until + self.tau)

    def observe_limit(self, items: Iterable[tuple[int, int | None]]) -> None:
        """Lower our limits to what the server says, if it says less than the catalogue."""
        burst, steady, daily = self.limit.burst, self.limit.steady, self.limit.daily
        for quota, window in items:
            if window == 1:
                burst = min(burst, quota)
            elif window in (None, 60):
                steady = min(steady, quota)
            elif window == 86400:
                daily = quota if daily is None else min(daily, quota)
        new = RateLimit(burst=max(1, burst), steady=max(1, steady), daily=daily)
        if new != self.limit:
            self.limit = new
            self.base_rate, self.capacity = pacing(
                new, self.config.target_utilisation, self.config.jitter_allowance
            )

    def observe_remaining(self, now: float, remaining: int, reset: float) -> None:
        """The server's count for its current window; requests still in flight are not in it."""
        self.budget_left = remaining - self.in_flight
        self.budget_until = now + reset

    def state(self, now: float) -> BucketState:
        return BucketState(
            key=self.key,
            limit=self.limit,
            rate=self.rate(now) if self.paced else math.inf,
            capacity=self.capacity,
            rate_factor=self.factor(now),
            paused_until=self.paused_until,
            budget=self.budget_left if now < self.budget_until else None,
            daily_used=self.day_count,
            limit_factor=self.config.limit_factor,
            mode=self.mode,
        )


@dataclass(slots=True)
class Permit:
    """Leave to send one request; report back through :meth:`finish` exactly once."""

    limiter: RateLimiter
    operation_id: str | None
    buckets: tuple[_Bucket, ...]
    waited: float
    _done: bool = field(default=False, repr=False)
    #: what each bucket's budget handed out for this request, to release when it is answered
    _tickets: tuple[object | None, ...] = field(default=(), repr=False)

    def finish(self, status: int | None, headers: Mapping[str, str] | None = None) -> None:
        """The response arrived (``status``) or never did (``None``); adapt to what it says."""
        if self._done:
            return
        self._done = True
        self.limiter._finish(self, status, headers or {})


class RateLimiter:
    """Per-(account, endpoint) token buckets built from the catalogue's limits.

    One instance is shared by all tasks of a client (and may be shared by
    several clients: buckets are keyed by the account fingerprint). The
    limits are scaled by the config's ``limit_factor``; bucket names (and so
    :meth:`state`'s ``group``) stay the catalogue's, whatever the factor.

    ``store`` is where the sliding windows and daily counts live
    (:mod:`kbridge.api.ratestore`): by default this limiter's own memory; a store
    given here is taken to be shared (other limiters, other processes), so a
    bucket that falls back to the token bucket keeps counting its requests in the
    shared windows, and obeying them, as well.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        config: LimiterConfig | None = None,
        store: RateBudgetStore | None = None,
    ) -> None:
        self._clock = clock
        self._config = config or LimiterConfig()
        #: where the windows and daily counts live: this process (the default), or a store
        #: every process acting for the account shares
        self._store: RateBudgetStore = store if store is not None else InProcessRateBudgetStore()
        self._shared = store is not None
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    @property
    def config(self) -> LimiterConfig:
        return self._config

    def _bucket(self, account: str, group: str, limit: RateLimit) -> _Bucket:
        key = (account, group)
        bucket = self._buckets.get(key)
        if bucket is None:
            factor = self._config.limit_factor
            scaled = limit if factor is None else _scaled(limit, factor)
            bucket = self._buckets[key] = _Bucket(
                group,
                scaled,
                self._config,
                self._store.budget(account, group),
                shared=self._shared,
            )
        return bucket

    def _buckets_for(
        self, account: str, operation: Operation | None, params: Mapping[str, Any] | None
    ) -> tuple[_Bucket, ...]:
        """The stricter parameter buckets first, then the operation's own."""
        tier_mode = self._config.grouping == "tier"
        if operation is None:
            limit = self._config.default_limit
            return (self._bucket(account, f"unknown {limit.tier}", limit),)
        buckets: list[_Bucket] = []
        for alt in operation.alt_limits:
            if _param_has(params, alt.param, alt.value):
                group = (
                    f"alt {alt.limit.tier}"
                    if tier_mode
                    else f"{operation.operation_id} {alt.param}={alt.value}"
                )
                buckets.append(self._bucket(account, group, alt.limit))
        limit = operation.rate_limit
        if operation.operation_id in self._config.daily_caps:
            limit = RateLimit(
                burst=limit.burst,
                steady=limit.steady,
                daily=self._config.daily_caps[operation.operation_id],
            )
        group = limit.tier if tier_mode else operation.operation_id
        buckets.append(self._bucket(account, group, limit))
        return tuple(buckets)

    async def acquire(
        self,
        account: str,
        operation: Operation | None,
        params: Mapping[str, Any] | None = None,
    ) -> Permit:
        """Wait (on the injected clock) until every bucket the request uses lets it through.

        Raises :class:`QuotaExhaustedError` at once if a daily cap is spent. Unpaced
        (``limit_factor=None``) it waits only for a 429's pause or a spent
        ``RateLimit-Remaining`` budget.
        """
        op_id = operation.operation_id if operation is not None else None
        buckets = self._buckets_for(account, operation, params)
        for bucket in buckets:
            bucket.check_daily(self._clock.now(), op_id)
        waited = 0.0
        tickets: list[object | None] = []
        jitter = self._config.jitter_allowance
        for bucket in buckets:
            async with bucket.lock:  # FIFO: asyncio.Lock wakes waiters in arrival order
                while True:
                    now = self._clock.monotonic()
                    wall = self._clock.now()
                    bucket.roll_day(wall)
                    daily_cap = bucket.limit.daily
                    if bucket.exhausted_until is not None:
                        daily_cap = 0  # the server said so: the budget must count nothing
                    taken = await bucket.budget.take(
                        now=now,
                        local_wait=bucket.local_delay(now),
                        windows=bucket.windows(),
                        jitter=jitter,
                        day=bucket.day_key,
                        daily_cap=daily_cap,
                    )
                    if taken.exhausted:
                        # the server said so, or the cap is spent (by us or others sharing it)
                        cap = bucket.limit.daily or 0
                        bucket.day_count = max(bucket.day_count, taken.day_count, cap)
                        bucket.check_daily(wall, op_id)
                        raise AssertionError("a spent daily budget raises above")
                    delay = taken.wait
                    if delay <= _EPSILON:
                        break
                    if taken.held:
                        delay = min(delay, _IN_FLIGHT_POLL)
                    await self._clock.sleep(delay)
                    waited += delay
                bucket.consume(now, taken.day_count)
                tickets.append(taken.ticket)
        return Permit(self, op_id, buckets, waited, _tickets=tuple(tickets))

    def _finish(self, permit: Permit, status: int | None, headers: Mapping[str, str]) -> None:
        now = self._clock.monotonic()
        for bucket in permit.buckets:
            bucket.in_flight = max(0, bucket.in_flight - 1)
        for bucket, ticket in zip(permit.buckets, permit._tickets, strict=False):
            if ticket is not None:
                # Answered or failed, the request cannot reach the server after now.
                bucket.budget.release(ticket, now)
        if status is None:
            return
        lowered = {k.lower(): v for k, v in headers.items()}
        if status == 429:
            retry_after = parse_retry_after(lowered.get("retry-after"), self._clock.now())
            for bucket in permit.buckets:
                bucket.throttled(now, retry_after)
            return
        main = permit.buckets[-1]
        main.observe_limit(parse_rate_limit_header(lowered.get("ratelimit-limit")))
        remaining = _first_number(lowered.get("ratelimit-remaining"))
        reset = _first_number(lowered.get("ratelimit-reset"))
        # Klaviyo's Reset is seconds; anything beyond a day is not that (e.g. an epoch).
        if remaining is not None and reset is not None and reset <= 86400:
            main.observe_remaining(now, int(remaining), reset)

    def quota_exhausted(self, permit: Permit, resets_at: datetime) -> None:
        """The server says a daily cap is spent: refuse this operation until ``resets_at``."""
        for bucket in permit.buckets:
            if bucket.limit.daily is not None:
                bucket.mark_exhausted(resets_at)

    def pace(
        self, operation: Operation, params: Mapping[str, Any] | None = None
    ) -> tuple[float, int] | None:
        """``(requests a second, requests at once)`` of the token bucket a bucket of
        ``operation`` falls back to: ``floor(at once + a second × T)`` in any ``T`` seconds,
        under every limit its ``params`` choose (``None``: unpaced). The windows allow
        more, most on short runs: :meth:`allowance` says how much."""
        factor = self._config.limit_factor
        if factor is None:
            return None
        limits = [a.limit for a in operation.alt_limits if _param_has(params, a.param, a.value)]
        paces = [
            pacing(
                _scaled(limit, factor),
                self._config.target_utilisation,
                self._config.jitter_allowance,
            )
            for limit in (*limits, operation.rate_limit)
        ]
        return min(rate for rate, _ in paces), min(burst for _, burst in paces)

    def allowance(
        self, operation: Operation, params: Mapping[str, Any] | None, seconds: float
    ) -> float | None:
        """The most requests this limiter lets ``operation`` send in ``seconds`` from its
        first, under every limit its ``params`` choose (``None``: unpaced): the sliding
        windows' count, or the token bucket's once a bucket of it has fallen back.

        The denominator of a sync's "% of rate budget": a run that kept up with the
        windows reads near 100 % however short it was.
        """
        factor = self._config.limit_factor
        if factor is None:
            return None
        fell_back = set(self.fallbacks)
        chosen = [
            (a.limit, f"alt {a.limit.tier}", f"{operation.operation_id} {a.param}={a.value}")
            for a in operation.alt_limits
            if _param_has(params, a.param, a.value)
        ]
        own = operation.rate_limit
        chosen.append((own, own.tier, operation.operation_id))
        seconds = max(0.0, seconds)
        counts = []
        for limit, tier_group, endpoint_group in chosen:
            scaled = _scaled(limit, factor)
            group = tier_group if self._config.grouping == "tier" else endpoint_group
            if group in fell_back:
                rate, capacity = pacing(
                    scaled, self._config.target_utilisation, self._config.jitter_allowance
                )
                counts.append(math.floor(capacity + rate * seconds + _EPSILON))
            else:
                counts.append(window_allowance(scaled, seconds))
        return float(min(counts))

    @property
    def fallbacks(self) -> tuple[str, ...]:
        """The buckets (operation ids, or tiers in ``"tier"`` grouping) that got a 429 the
        windows did not predict and so pace as a token bucket: a server that behaves as a
        leaky bucket, or a quota shared with another integration. Empty: all is as
        Klaviyo documents it."""
        return tuple(sorted({b.key for b in self._buckets.values() if b.mode != "windows"}))

    def paced_limit(self, operation: Operation) -> RateLimit | None:
        """The burst and steady limits this limiter paces ``operation`` to: the
        catalogue's, × ``limit_factor`` (``None``: unpaced)."""
        factor = self._config.limit_factor
        if factor is None:
            return None
        return _scaled(operation.rate_limit, factor)

    def daily_budget(self, account: str, operation: Operation) -> DailyBudget | None:
        """Today's budget of ``operation``'s daily cap (``None``: it has none).

        Counts this limiter's own requests (and what the server reported), so a
        caller can plan work that fits instead of running into the cap.
        """
        bucket = self._buckets_for(account, operation, None)[-1]
        if bucket.limit.daily is None and bucket.exhausted_until is None:
            return None
        return bucket.daily_budget(self._clock.now())

    def state(self, account: str, group: str) -> BucketState | None:
        """The bucket for ``group`` (an operation id, or a tier name in ``"tier"`` mode)."""
        bucket = self._buckets.get((account, group))
        return None if bucket is None else bucket.state(self._clock.monotonic())


def window_allowance(limit: RateLimit, seconds: float) -> int:
    """The most requests ``limit``'s sliding windows let through in ``seconds`` (inclusive)
    from the first: each minute from the first request sends its ``steady`` share at
    ``burst`` a second, the next begins as the first of the last falls out."""
    minutes, rest = divmod(max(0.0, seconds) + _EPSILON, _STEADY_WINDOW)
    return int(minutes) * limit.steady + min(limit.steady, limit.burst * (int(rest) + 1))


def _param_has(params: Mapping[str, Any] | None, name: str, value: str) -> bool:
    """Whether ``params[name]`` includes ``value`` (comma-joined strings and lists alike)."""
    if not params or name not in params:
        return False
    raw = params[name]
    values: Iterable[Any] = raw if isinstance(raw, list | tuple) else [raw]
    return any(value in (p.strip() for p in str(item).split(",")) for item in values)
