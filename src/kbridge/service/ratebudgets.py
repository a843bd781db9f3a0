"""Each Klaviyo account's rate budget where the workers keep it, and how a page reads it.

The worker's limiter decides from its :class:`~kbridge.api.ratestore.RateBudgetStore`;
the dashboard shows what that store holds, not a second count of its own:

* without a broker (``kbridge serve`` on embedded defaults) the jobs of this
  process share one :class:`LocalRateBudgets`: one in-memory budget per Klaviyo
  account (so two jobs of one account pace together, as two workers on Redis
  do), which the dashboard in the same process reads;
* with a Redis broker every worker keeps the budgets in Redis
  (:mod:`kbridge.service.ratestore`); :class:`RedisRateBudgetReader` reads
  the same keys, with Redis's clock as the workers' scripts use it.

Either way :meth:`usage` answers, per bucket group of the account (an
operation id, ``"op param=value"`` for a stricter parameter limit, or a
tier), the requests in the current burst (1 s) and steady (60 s) windows
and today's (UTC) count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import Any, Protocol

from kbridge.api.ratestore import (
    BURST_WINDOW,
    STEADY_WINDOW,
    WINDOW_MARGIN,
    AccountBudgets,
    InProcessRateBudgetStore,
)
from kbridge.core import Clock, SystemClock

__all__ = [
    "GroupUsage",
    "LocalRateBudgets",
    "RateBudgetReader",
    "RedisRateBudgetReader",
]


@dataclass(frozen=True, slots=True)
class GroupUsage:
    """One bucket group's use: requests in the burst and steady windows now, and today."""

    group: str
    burst: int
    steady: int
    today: int


class RateBudgetReader(Protocol):
    """Reads an account's rate budgets where the workers keep them."""

    def usage(self, account_id: str) -> list[GroupUsage]:
        """Per bucket group of ``account_id``: its windows' counts now and today's count."""
        ...


class LocalRateBudgets:
    """The rate budgets of this process's workers, one per Klaviyo account.

    ``clock`` must be the workers' (their limiters stamp requests on its monotonic
    time); by default the system clock, as the workers of ``kbridge serve`` use.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self._store = InProcessRateBudgetStore()

    def __repr__(self) -> str:
        return f"LocalRateBudgets({self._store!r})"

    def store(self, account_id: str) -> AccountBudgets:
        """What a worker's limiter for ``account_id`` takes its budgets from: every key of
        the account (whatever its fingerprint, before and after a rotation) draws on the
        same budget, as the Redis store bound to ``account_id`` does."""
        return self._store.for_account(account_id)

    def usage(self, account_id: str) -> list[GroupUsage]:
        now = self.clock.monotonic()
        today = self.clock.now().astimezone(UTC).date().isoformat()
        rows = []
        for group, budget in sorted(self._store.for_account(account_id).groups().items()):
            burst, steady = budget.usage(now)
            rows.append(
                GroupUsage(group, burst, steady, budget.day_count if budget.day == today else 0)
            )
        return rows


def _glob_escape(text: str) -> str:
    return "".join(f"\\{ch}" if ch in "*?[]\\" else ch for ch in text)


class RedisRateBudgetReader:
    """Reads the budgets :class:`~kbridge.service.ratestore.RedisRateBudgetStore` keeps.

    One ``SCAN`` of the account's window keys and a pipeline of counts: what a
    dashboard can afford every two seconds, whatever the number of workers.
    """

    def __init__(self, url: str, *, prefix: str = "kbridge:rate") -> None:
        import redis

        self._redis: Any = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=1.0)
        self._prefix = prefix

    def __repr__(self) -> str:
        return "RedisRateBudgetReader(…)"  # the URL may carry a password

    def close(self) -> None:
        self._redis.close()

    def usage(self, account_id: str) -> list[GroupUsage]:
        seconds, micros = self._redis.time()
        now = float(seconds) + float(micros) / 1_000_000
        from datetime import datetime

        today = datetime.fromtimestamp(now, UTC).date().isoformat()
        head = f"{self._prefix}:{{{account_id}|"
        groups: set[str] = set()
        for pattern in (f"{_glob_escape(head)}*}}:w", f"{_glob_escape(head)}*}}:d:{today}"):
            for key in self._redis.scan_iter(match=pattern, count=500):
                text = key.decode() if isinstance(key, bytes) else str(key)
                groups.add(text[len(head) : text.rindex("}")])
        ordered = sorted(groups)
        pipe = self._redis.pipeline(transaction=False)
        for group in ordered:
            prefix = f"{head}{group}}}"
            pipe.zcount(f"{prefix}:w", f"({now - BURST_WINDOW - WINDOW_MARGIN!r}", "+inf")
            pipe.zcount(f"{prefix}:w", f"({now - STEADY_WINDOW - WINDOW_MARGIN!r}", "+inf")
            pipe.get(f"{prefix}:d:{today}")
        answers = pipe.execute()
        rows = []
        for i, group in enumerate(ordered):
            burst, steady, day = answers[3 * i : 3 * i + 3]
            rows.append(GroupUsage(group, int(burst), int(steady), int(day or 0)))
        return rows
