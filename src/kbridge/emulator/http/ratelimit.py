"""Klaviyo's rate limits, enforced per account (or OAuth installation) and operation.

Klaviyo documents fixed windows of 1 s (burst) and 60 s (steady) per account
and endpoint, plus a daily cap on a few operations, and some query values
(``additional-fields[profile]=predictive_analytics``, ``include=lists`` …)
consume a stricter limit as well. One request consumes every limit that
applies, atomically: a refused request consumes nothing, so a client that
waits ``Retry-After`` gets in.

Two algorithms (``EmulatorConfig.rate_limit_algorithm``):

- ``fixed-window`` (Klaviyo's documented behaviour): windows aligned to
  multiples of their length on the monotonic clock, a counter per window.
- ``leaky-bucket``: GCRA per window, capacity = the window's limit,
  draining at limit/length; integrators often model Klaviyo this way.

Daily caps are always calendar days of the *simulated* clock (``day_of``).
Time is kept in integer nanoseconds (and GCRA in nanoseconds × limit) so a
client pacing at exactly the published rate is never refused by rounding.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final, Literal

from kbridge.catalog import Operation, RateLimit

__all__ = ["RateDecision", "RateLimiter", "WindowName", "scaled_limit"]

WindowName = Literal["burst", "steady", "daily"]

_NS: Final = 1_000_000_000
_BURST_NS: Final = 1 * _NS
_STEADY_NS: Final = 60 * _NS
_DAY_SECONDS: Final = 86_400
#: GCRA leniency: a request up to 1 µs early still fits (clock readings are floats).
_TOLERANCE_NS: Final = 1_000


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The answer for one request.

    ``headers`` go on the response as they are: ``RateLimit-Limit``,
    ``-Remaining`` and ``-Reset`` (the steady window) when allowed, only
    ``Retry-After`` when refused. ``window`` names the limit that refused
    (the one freeing up last) and ``daily_exhausted`` tells the app to say
    "daily limit" in the 429 body.
    """

    allowed: bool
    retry_after: int | None
    headers: dict[str, str]
    window: WindowName | None = None
    daily_exhausted: bool = False


def scaled_limit(limit: int, factor: float) -> int:
    """``limit × factor`` rounded down, never below 1 request per window."""
    return max(1, math.floor(limit * factor + 1e-9))


def _ceil_seconds(ns: int) -> int:
    """Whole seconds covering ``ns`` (ceil), at least 1."""
    return max(1, -(-ns // _NS))


class _Window:
    """Mutable state of one limit for one key; overwritten as windows roll."""

    __slots__ = ("count", "index", "tat")

    def __init__(self) -> None:
        self.index: Hashable = None  # fixed window number, or the simulated day
        self.count = 0
        self.tat: int | None = None  # GCRA theoretical arrival time (ns × limit)


class _Slot:
    """The windows of one (bucket, operation-or-tier[, param=value]) key."""

    __slots__ = ("burst", "daily", "steady")

    def __init__(self) -> None:
        self.burst = _Window()
        self.steady = _Window()
        self.daily = _Window()


class _Verdict:
    """One window's check: whether it admits, and how long until it would."""

    __slots__ = ("index", "name", "ok", "remaining", "reset_ns", "tat", "used", "wait_ns", "window")

    def __init__(self) -> None:
        self.ok = True
        self.wait_ns = 0
        self.remaining = 0
        self.reset_ns = 0
        self.name: WindowName = "burst"
        self.window: _Window | None = None
        self.index: Hashable = None
        self.used = 0
        self.tat: int | None = None


class RateLimiter:
    """Per-bucket, per-operation limits from the catalogue, scaled by ``factor``.

    ``bucket`` identifies whose quota a request spends: the account for
    private keys, the installation for OAuth tokens. ``factor=None`` turns
    limiting off (every request allowed; headers still carry the published
    limits so clients can read them). ``group_by="tier"`` makes operations
    of the same tier share windows instead of each having their own.
    ``seconds_to_next_day`` gives the exact wait on a daily refusal (until
    simulated midnight); without it a full day is reported. ``daily_caps``
    replaces the catalogue's daily cap of the operations it names (unscaled;
    ``None`` removes the cap).
    """

    def __init__(
        self,
        *,
        factor: float | None,
        algorithm: Literal["fixed-window", "leaky-bucket"] = "fixed-window",
        monotonic: Callable[[], float],
        day_of: Callable[[], date | str],
        group_by: Literal["operation", "tier"] = "operation",
        seconds_to_next_day: Callable[[], float] | None = None,
        header_format: Literal["plain", "windows"] = "plain",
        daily_caps: Mapping[str, int | None] | None = None,
    ) -> None:
        if factor is not None and not (factor > 0 and math.isfinite(factor)):
            raise ValueError(f"rate-limit factor must be a positive number or None, got {factor}")
        if algorithm not in ("fixed-window", "leaky-bucket"):
            raise ValueError(f"unknown rate-limit algorithm {algorithm!r}")
        if group_by not in ("operation", "tier"):
            raise ValueError(f"unknown rate-limit grouping {group_by!r}")
        self._factor = factor
        self._leaky = algorithm == "leaky-bucket"
        self._monotonic = monotonic
        self._day_of = day_of
        self._by_tier = group_by == "tier"
        self._seconds_to_next_day = seconds_to_next_day
        self._windows_header = header_format == "windows"
        self._daily_caps = dict(daily_caps or {})
        bad = [k for k, v in self._daily_caps.items() if v is not None and v < 1]
        if bad:
            raise ValueError(f"daily caps must be at least 1 (or None for no cap): {bad}")
        self._lock = threading.Lock()
        self._slots: dict[tuple[str, ...], _Slot] = {}
        self._scaled: dict[RateLimit, RateLimit] = {}

    @property
    def enabled(self) -> bool:
        return self._factor is not None

    def reset(self) -> None:
        """Forget every window (e.g. on ``POST /_emulator/reset``)."""
        with self._lock:
            self._slots.clear()

    def limits_for(self, operation: Operation) -> RateLimit:
        """The operation's own limits as enforced (scaled by the factor, daily caps overridden)."""
        limit = self._scale(operation.rate_limit)
        if operation.operation_id in self._daily_caps:
            limit = RateLimit(limit.burst, limit.steady, self._daily_caps[operation.operation_id])
        return limit

    def check(
        self,
        bucket: str,
        operation: Operation,
        query: Sequence[tuple[str, str]] | None = None,
    ) -> RateDecision:
        """Admit or refuse one request, consuming every applicable limit if admitted."""
        now_ns = round(self._monotonic() * _NS)
        if self._factor is None:
            return self._unlimited(operation, now_ns)
        group = operation.rate_limit.tier if self._by_tier else operation.operation_id
        keys: list[tuple[tuple[str, ...], RateLimit]] = [
            ((bucket, group), self.limits_for(operation))
        ]
        if operation.alt_limits and query:
            for alt in operation.alt_limits:
                if _query_uses(query, alt.param, alt.value):
                    keys.append(
                        ((bucket, group, f"{alt.param}={alt.value}"), self._scale(alt.limit))
                    )
        with self._lock:
            today = self._day_of() if any(lim.daily for _, lim in keys) else None
            verdicts = [
                verdict
                for key, limit in keys
                for verdict in self._judge(self._slot(key), limit, now_ns, today)
            ]
            refused = [v for v in verdicts if not v.ok]
            if refused:
                return self._refusal(refused)
            for v in verdicts:
                self._commit(v)
        steady = verdicts[1]
        return RateDecision(True, None, self._headers(keys[0][1], steady))

    # ----------------------------------------------------------------- internals

    def _scale(self, limit: RateLimit) -> RateLimit:
        scaled = self._scaled.get(limit)
        if scaled is None:
            factor = self._factor if self._factor is not None else 1.0
            scaled = RateLimit(
                scaled_limit(limit.burst, factor),
                scaled_limit(limit.steady, factor),
                None if limit.daily is None else scaled_limit(limit.daily, factor),
            )
            self._scaled[limit] = scaled
        return scaled

    def _slot(self, key: tuple[str, ...]) -> _Slot:
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot()
        return slot

    def _judge(
        self, slot: _Slot, limit: RateLimit, now_ns: int, today: date | str | None
    ) -> list[_Verdict]:
        timed = self._gcra if self._leaky else self._fixed
        verdicts = [
            timed(slot.burst, "burst", limit.burst, _BURST_NS, now_ns),
            timed(slot.steady, "steady", limit.steady, _STEADY_NS, now_ns),
        ]
        if limit.daily is not None:
            verdicts.append(self._daily(slot.daily, limit.daily, today))
        return verdicts

    @staticmethod
    def _fixed(
        window: _Window, name: WindowName, limit: int, length_ns: int, now_ns: int
    ) -> _Verdict:
        v = _Verdict()
        v.name, v.window = name, window
        v.index = now_ns // length_ns
        used = window.count if window.index == v.index else 0
        end_ns = (now_ns // length_ns + 1) * length_ns
        v.ok = used < limit
        v.used = used + 1
        v.remaining = max(0, limit - used - 1)
        v.reset_ns = end_ns - now_ns
        v.wait_ns = 0 if v.ok else end_ns - now_ns
        return v

    @staticmethod
    def _gcra(
        window: _Window, name: WindowName, limit: int, length_ns: int, now_ns: int
    ) -> _Verdict:
        # Units of ns × limit: one request costs length_ns, capacity is length_ns × limit.
        v = _Verdict()
        v.name, v.window = name, window
        now = now_ns * limit
        capacity = length_ns * limit
        start = now if window.tat is None or window.tat < now else window.tat
        new_tat = start + length_ns
        v.ok = new_tat - now <= capacity + _TOLERANCE_NS * limit
        v.tat = new_tat
        backlog = new_tat - now
        v.remaining = max(0, (capacity - backlog) // length_ns)
        v.reset_ns = -(-backlog // limit)
        v.wait_ns = 0 if v.ok else -(-(backlog - capacity) // limit)
        return v

    def _daily(self, window: _Window, limit: int, today: date | str | None) -> _Verdict:
        v = _Verdict()
        v.name, v.window, v.index = "daily", window, today
        used = window.count if window.index == today else 0
        v.ok = used < limit
        v.used = used + 1
        v.remaining = max(0, limit - used - 1)
        if not v.ok:
            seconds = (
                self._seconds_to_next_day()
                if self._seconds_to_next_day is not None
                else float(_DAY_SECONDS)
            )
            v.wait_ns = max(1, round(seconds * _NS))
        return v

    def _commit(self, v: _Verdict) -> None:
        window = v.window
        assert window is not None
        if v.tat is not None:
            window.tat = v.tat
        else:
            window.index = v.index
            window.count = v.used

    @staticmethod
    def _refusal(refused: list[_Verdict]) -> RateDecision:
        binding = max(refused, key=lambda v: v.wait_ns)
        retry_after = _ceil_seconds(binding.wait_ns)
        return RateDecision(
            allowed=False,
            retry_after=retry_after,
            headers={"Retry-After": str(retry_after)},
            window=binding.name,
            daily_exhausted=any(v.name == "daily" for v in refused),
        )

    def _headers(self, limit: RateLimit, steady: _Verdict) -> dict[str, str]:
        return {
            "RateLimit-Limit": self._limit_header(limit),
            "RateLimit-Remaining": str(steady.remaining),
            "RateLimit-Reset": str(_ceil_seconds(steady.reset_ns)),
        }

    def _limit_header(self, limit: RateLimit) -> str:
        if not self._windows_header:
            return str(limit.steady)
        parts = [f"{limit.burst};w=1", f"{limit.steady};w=60"]
        if limit.daily is not None:
            parts.append(f"{limit.daily};w={_DAY_SECONDS}")
        return ", ".join(parts)

    def _unlimited(self, operation: Operation, now_ns: int) -> RateDecision:
        limit = operation.rate_limit
        reset_ns = _STEADY_NS - now_ns % _STEADY_NS
        return RateDecision(
            True,
            None,
            {
                "RateLimit-Limit": self._limit_header(limit),
                "RateLimit-Remaining": str(limit.steady),
                "RateLimit-Reset": str(_ceil_seconds(reset_ns)),
            },
        )


def _query_uses(query: Sequence[tuple[str, str]], param: str, value: str) -> bool:
    """Whether ``param`` carries ``value`` (values are comma lists: ``a,b``)."""
    for key, raw in query:
        if key == param and value in (part.strip() for part in raw.split(",")):
            return True
    return False
