"""What the dashboard reads of an account's rate budget is what the workers' limiters count:
the in-process budgets of ``kbridge serve`` and the Redis keys of workers on a broker."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kbridge.api.ratelimit import LimiterConfig, RateLimiter
from kbridge.catalog import get
from kbridge.core import ManualClock, SystemClock
from kbridge.service.ratebudgets import GroupUsage, LocalRateBudgets, RedisRateBudgetReader
from kbridge.service.ratestore import RedisRateBudgetStore

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def _send(limiter: RateLimiter, account: str, operation: str, n: int) -> None:
    for _ in range(n):
        permit = await limiter.acquire(account, get(operation))
        permit.finish(200)


async def test_the_local_budgets_read_the_workers_windows_and_day() -> None:
    clock = ManualClock(datetime(2026, 12, 7, 1, 0, tzinfo=UTC))
    budgets = LocalRateBudgets(clock)
    # two keys (fingerprints) of one Klaviyo account draw on one budget; another account not
    first = RateLimiter(clock=clock, store=budgets.store("ACCT"))
    second = RateLimiter(clock=clock, store=budgets.store("ACCT"))
    other = RateLimiter(clock=clock, store=budgets.store("OTHER"))
    await _send(first, "fingerprint-1", "get_profiles", 3)
    await _send(second, "fingerprint-2", "get_profiles", 2)
    await _send(other, "fingerprint-3", "get_profiles", 1)
    await _send(first, "fingerprint-1", "query_campaign_values", 1)
    assert budgets.usage("ACCT") == [
        GroupUsage("get_profiles", 5, 5, 5),
        GroupUsage("query_campaign_values", 1, 1, 1),
    ]
    clock.advance(2.0)  # out of the burst window, still in the steady one
    assert budgets.usage("ACCT")[0] == GroupUsage("get_profiles", 0, 5, 5)
    clock.advance(60.0)
    assert budgets.usage("ACCT")[0] == GroupUsage("get_profiles", 0, 0, 5)
    clock.advance(86400.0)  # a new UTC day
    assert budgets.usage("ACCT")[0] == GroupUsage("get_profiles", 0, 0, 0)
    assert budgets.usage("NOBODY") == []


async def test_the_redis_reader_reads_what_the_workers_keep_in_redis(redis_url: str) -> None:
    clock = SystemClock()
    store = RedisRateBudgetStore(redis_url, clock=clock, account_id="ACCT-R")
    elsewhere = RedisRateBudgetStore(redis_url, clock=clock, account_id="ACCT-S")
    config = LimiterConfig(limit_factor=1.0)
    reader = RedisRateBudgetReader(redis_url)
    try:
        await _send(RateLimiter(clock=clock, config=config, store=store), "fp", "get_lists", 2)
        await _send(RateLimiter(clock=clock, config=config, store=elsewhere), "fp", "get_lists", 1)
        await store.flush()
        # the windows hold what was sent in the last second and minute (this test sends two
        # requests well within a second of reading: the burst window may have let go of them)
        (row,) = reader.usage("ACCT-R")
        assert (row.group, row.steady, row.today) == ("get_lists", 2, 2)
        assert 0 <= row.burst <= 2
        assert [r.today for r in reader.usage("ACCT-S")] == [1]
        assert reader.usage("NOBODY") == []
    finally:
        reader.close()
        await store.aclose()
        await elsewhere.aclose()
