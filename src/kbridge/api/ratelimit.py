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
its response time once it came back (it cannot have arrived later); while it
is in flight, ``jitter_allowance`` after its send, and from then on *now*,
for a stalled request may still arrive at any moment (a loaded machine held
requests back for seconds, and a request sent a minute after one counted at
``send + jitter`` then shared Klaviyo's fixed window with it). Once a
response is in, no margin is needed at all; a waiter that is held up by a
request still in flight looks again after a short poll. A request unanswered
for :data:`~kbridge.api.ratestore.IN_FLIGHT_CAP` belongs to a process that
died, and stops holding its place.

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

The arithmetic (the config, the scaled limits, one bucket) is in
:mod:`kbridge.api._ratebucket`; this module orchestrates the buckets.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kbridge.api._ratebucket import (
    _EPSILON,
    DEFAULT_LIMIT,
    BucketState,
    DailyBudget,
    LimiterConfig,
    PacingMode,
    _Bucket,
    _first_number,
    _scaled,
    pacing,
    parse_limit_factor,
    parse_rate_limit_header,
    window_allowance,
)
from kbridge.api._ratebucket import Grouping as Grouping
from kbridge.api.errors import parse_retry_after
from kbridge.api.ratestore import (
    BURST_WINDOW,
    STEADY_WINDOW,
    InProcessRateBudgetStore,
    RateBudgetStore,
)
from kbridge.catalog import Operation, RateLimit
from kbridge.core import Clock

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

#: How often a waiter held up by a request still in flight looks again: its response may
#: come back and show it arrived earlier than the jitter allowance assumed.
_IN_FLIGHT_POLL = 0.05


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

    ``on_rate_limited`` hears of each 429 (with the operation id, if known) as its
    response comes in: what a service counts to show an account's refusals.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        config: LimiterConfig | None = None,
        store: RateBudgetStore | None = None,
        on_rate_limited: Callable[[str | None], None] | None = None,
    ) -> None:
        self._clock = clock
        self._config = config or LimiterConfig()
        #: where the windows and daily counts live: this process (the default), or a store
        #: every process acting for the account shares
        self._store: RateBudgetStore = store if store is not None else InProcessRateBudgetStore()
        self._shared = store is not None
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._on_rate_limited = on_rate_limited

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
            if self._on_rate_limited is not None:
                self._on_rate_limited(permit.operation_id)
            retry_after = parse_retry_after(lowered.get("retry-after"), self._clock.now())
            pause = (
                retry_after if retry_after is not None else self._config.pause_without_retry_after
            )
            for bucket in permit.buckets:
                bucket.throttled(now, retry_after)
                if pause <= STEADY_WINDOW + BURST_WINDOW:
                    # the account was refused, not this process: its other workers wait too.
                    # Longer is a daily quota, which the exhausted path shares
                    bucket.budget.pause(pause, now)
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


def _param_has(params: Mapping[str, Any] | None, name: str, value: str) -> bool:
    """Whether ``params[name]`` includes ``value`` (comma-joined strings and lists alike)."""
    if not params or name not in params:
        return False
    raw = params[name]
    values: Iterable[Any] = raw if isinstance(raw, list | tuple) else [raw]
    return any(value in (p.strip() for p in str(item).split(",")) for item in values)
