"""A 429 one worker draws pauses every worker of that account (issue #20, item 5).

Klaviyo meters the account: when it refuses one worker's request with
``Retry-After``, the other workers acting for the account would be refused
too. The pause therefore lives in the shared budget (Redis), beside the
windows. Each limiter here stands for a worker process (its own limiter, its
own store client); the 429 is the emulator's own, drawn by a limiter that
does not pace (``limit_factor=None``) against an emulator that enforces its
limits; time is a ManualClock, so waits are read, not measured.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from kbridge.api.ratelimit import LimiterConfig, RateLimiter
from kbridge.catalog import get
from kbridge.core import ManualClock
from kbridge.emulator.server import EmulatorServer
from kbridge.service.ratestore import RedisRateBudgetStore
from kbridge.testing.plugin import http_client_for

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

OPERATION = get("get_accounts")  # 1/s, 1/min at 0.05: the second request in a minute is refused


def worker(
    redis_url: str, clock: ManualClock, account_id: str
) -> tuple[RateLimiter, RedisRateBudgetStore]:
    store = RedisRateBudgetStore(redis_url, clock=clock, account_id=account_id, time="caller")
    return RateLimiter(clock=clock, config=LimiterConfig(limit_factor=None), store=store), store


async def draw_a_429(limiter: RateLimiter, http: httpx.Client) -> float:
    """Send get_accounts through ``limiter`` until the emulator refuses one; its Retry-After."""
    for _ in range(5):
        permit = await limiter.acquire("acct", OPERATION)
        reply = await asyncio.to_thread(http.get, "/api/accounts")
        permit.finish(reply.status_code, dict(reply.headers))
        if reply.status_code == 429:
            return float(reply.headers["retry-after"])
    raise AssertionError("the emulator never refused a request")


async def test_a_429_seen_by_one_worker_pauses_the_others_of_that_account_for_its_retry_after(
    emulator_factory: Callable[..., EmulatorServer], redis_url: str
) -> None:
    server = emulator_factory(rate_limit_factor=0.05)
    clock = ManualClock()
    first, first_store = worker(redis_url, clock, "acct-1")
    second, second_store = worker(redis_url, clock, "acct-1")
    other_account, other_store = worker(redis_url, clock, "acct-2")
    try:
        with http_client_for(server) as http:
            retry_after = await draw_a_429(first, http)
        assert retry_after > 0
        await first_store.flush()  # the pause is on its way to Redis

        waited = (await second.acquire("acct", OPERATION)).waited
        elsewhere = (await other_account.acquire("acct", OPERATION)).waited
        # once waited, the account's workers go on: waiting does not renew the pause
        after = (await second.acquire("acct", OPERATION)).waited
    finally:
        for store in (first_store, second_store, other_store):
            await store.aclose()

    assert waited == pytest.approx(retry_after, abs=1e-6)
    assert elsewhere == 0.0  # accounts never share a budget, nor its pauses
    assert after == 0.0
