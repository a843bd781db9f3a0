"""The arithmetic under :class:`~kbridge.api.ratelimit.RateLimiter`: its config, the
limits scaled and turned into a token bucket's rate and capacity, the server's
rate-limit headers read, and one bucket's windows, fallback and daily count.

:mod:`kbridge.api.ratelimit` explains the design and re-exports the public names.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from kbridge.api.errors import ErrorDetails, QuotaExhaustedError
from kbridge.api.ratestore import BURST_WINDOW, STEADY_WINDOW, RateBudget
from kbridge.catalog import RateLimit
from kbridge.core import ConfigurationError

__all__ = [
    "DEFAULT_LIMIT",
    "BucketState",
    "DailyBudget",
    "Grouping",
    "LimiterConfig",
    "PacingMode",
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


@dataclass(frozen=True, kw_only=True, slots=True)
class LimiterConfig:
    """How hard to drive the limits and how to react when the server pushes back.

    ``grouping="endpoint"`` gives each operation its own buckets (Klaviyo
    meters per endpoint); ``"tier"`` shares one bucket among operations with
    identical limits, a conservative choice if the account's quota turns out
    to be shared more widely. ``jitter_allowance`` is how much closer
    together (seconds) two requests may arrive than they were sent, e.g.
    through varying network delay: a request still in flight counts in the
    windows as if it arrived that long after it was sent, or now if that is
    later (one whose response came back counts at that moment), and the
    token-bucket fallback leaves room for it. ``target_utilisation`` is the
    token bucket's share of the steady limit; the windows themselves are filled exactly.

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


def window_allowance(limit: RateLimit, seconds: float) -> int:
    """The most requests ``limit``'s sliding windows let through in ``seconds`` (inclusive)
    from the first: each minute from the first request sends its ``steady`` share at
    ``burst`` a second, the next begins as the first of the last falls out."""
    minutes, rest = divmod(max(0.0, seconds) + _EPSILON, _STEADY_WINDOW)
    return int(minutes) * limit.steady + min(limit.steady, limit.burst * (int(rest) + 1))
