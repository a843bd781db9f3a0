"""When to retry and how long to wait: pure functions, the random source injected.

The table (see docs/design/request-pipeline.md):

=====================================  ==========================  =====================
outcome                                 idempotent (GET/PATCH/      POST (not marked
                                        DELETE, or idempotent=True)  idempotent)
=====================================  ==========================  =====================
429                                     wait Retry-After, retry     wait Retry-After, retry
500/502/503/504/52x                     backoff, retry              raise (may have run)
connect error / connect or pool timeout backoff, retry              backoff, retry (never sent)
403 CDN challenge (HTML, cf-mitigated)  backoff, retry              backoff, retry (never sent)
read/write/total timeout, reset         backoff, retry              raise (may have run)
other 4xx, 501                          raise                       raise
=====================================  ==========================  =====================

Every retry is bounded by ``max_attempts`` and ``total_deadline``: a wait
that would end past the deadline is not started.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from kbridge.core import ConfigurationError

__all__ = [
    "IDEMPOTENT_METHODS",
    "RETRYABLE_STATUSES",
    "Failure",
    "RetryPolicy",
    "is_idempotent",
    "should_retry",
    "sleep_time",
]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})
# 501 (not implemented) and 505 are permanent; the 52x are Cloudflare's origin failures.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504, 520, 521, 522, 523, 524})


class Failure(enum.Enum):
    """How an attempt failed, as far as retrying is concerned."""

    STATUS = "status"  # the server answered with an error status
    NOT_SENT = "not_sent"  # connect error/timeout, pool timeout: the server never saw it
    MAYBE_SENT = "maybe_sent"  # read/write/total timeout, connection dropped mid-request
    CHALLENGED = "challenged"  # the CDN answered with a bot check: Klaviyo never saw it


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """Bounds on retrying: attempts (including the first), a total deadline, the backoff curve.

    Backoff before retry ``n`` (1-based) is ``uniform(0, min(cap, base * 2**(n-1)))``
    ("full jitter"), except after a 429 with ``Retry-After``, which is waited exactly.
    """

    max_attempts: int = 5
    total_deadline: float = 300.0
    base: float = 0.5
    cap: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigurationError("RetryPolicy.max_attempts must be at least 1")
        if self.total_deadline <= 0 or self.base < 0 or self.cap < 0:
            raise ConfigurationError(
                "RetryPolicy.total_deadline must be positive and base/cap non-negative"
            )

    @classmethod
    def never(cls) -> RetryPolicy:
        """One attempt, no retries."""
        return cls(max_attempts=1)


def is_idempotent(method: str, idempotent: bool | None = None) -> bool:
    """Whether repeating the request is harmless; an explicit ``idempotent`` wins."""
    if idempotent is not None:
        return idempotent
    return method.upper() in IDEMPOTENT_METHODS


def should_retry(
    *,
    method: str,
    failure: Failure,
    status: int | None = None,
    idempotent: bool | None = None,
    attempt: int,
    policy: RetryPolicy,
) -> bool:
    """Whether attempt number ``attempt`` (1-based), which failed so, deserves another.

    Deadlines are checked separately (:func:`sleep_time` gives the wait; the
    caller compares it with the time left).
    """
    if attempt >= policy.max_attempts:
        return False
    if failure in (Failure.NOT_SENT, Failure.CHALLENGED):
        return True
    safe = is_idempotent(method, idempotent)
    if failure is Failure.MAYBE_SENT:
        return safe
    if status == 429:
        return True  # throttled requests were not processed
    return safe and status in RETRYABLE_STATUSES


def sleep_time(
    *,
    attempt: int,
    policy: RetryPolicy,
    retry_after: float | None = None,
    random: Callable[[], float],
) -> float:
    """Seconds to wait before the retry that follows attempt ``attempt``.

    ``retry_after`` (a 429's header) is honoured exactly; otherwise full
    jitter over an exponentially growing, capped ceiling. ``random`` returns
    a float in [0, 1), e.g. ``random.Random().random``.
    """
    if retry_after is not None:
        return max(0.0, retry_after)
    ceiling: float = min(policy.cap, policy.base * 2.0 ** (attempt - 1))
    return ceiling * random()
