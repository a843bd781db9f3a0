"""One rate budget per Klaviyo account across processes: the Redis store, against real Redis.

The Lua script must decide exactly as the in-process store does (the same
sequence on a ManualClock, step by step); workers in separate processes that
share it must together stay under the emulator's fixed windows (its 429 count
is the judge); accounts never share a budget; and Redis going away makes the
limiter wait and then fail with one clear line, never send unpaced.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from kbridge.api.ratelimit import LimiterConfig, RateLimiter
from kbridge.api.ratestore import InProcessBudget, RateBudgetUnavailableError, Take
from kbridge.catalog import get
from kbridge.core import ManualClock, SystemClock
from kbridge.emulator.server import EmulatorServer
from kbridge.service.ratestore import RedisRateBudgetStore
from kbridge.testing.redis import RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

WORKER = Path(__file__).with_name("paced_worker.py")
FACTOR = 0.04  # GET /api/profiles at 3/s, 30/min


def _same(local: Take, shared: Take) -> None:
    assert shared.wait == pytest.approx(local.wait, abs=1e-9)
    assert (shared.held, shared.exhausted, shared.day_count) == (
        local.held,
        local.exhausted,
        local.day_count,
    )
    assert (shared.ticket is None) == (local.ticket is None)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_the_lua_script_decides_as_the_in_process_store_does(
    redis_url: str, seed: int
) -> None:
    rng = random.Random(seed)
    store = RedisRateBudgetStore(redis_url, clock=ManualClock(), time="caller")
    local, shared = InProcessBudget(), store.budget("acct", "get_profiles")
    now, granted, taken = 0.0, 0, []
    day = "2026-12-06"
    try:
        for step in range(300):
            now += rng.choice([0.0, 0.01, 0.1, 0.3, rng.random(), 2.0, 30.0])
            if step == 200:
                day = "2026-12-07"  # a new UTC day counts from zero
            kwargs = {
                "now": now,
                "local_wait": rng.choice([0.0, 0.0, 0.0, 0.5]),
                "windows": (3, 30) if step % 50 < 45 else None,
                "jitter": 0.25,
                "day": day,
                "daily_cap": 120,
            }
            a = await local.take(**kwargs)  # type: ignore[arg-type]
            b = await shared.take(**kwargs)  # type: ignore[arg-type]
            _same(a, b)
            if a.ticket is not None:
                granted += 1
                taken.append((a.ticket, b.ticket))
            # answer some of the requests in flight, in any order
            while taken and rng.random() < 0.6:
                ta, tb = taken.pop(rng.randrange(len(taken)))
                # some answers come long after send + jitter (a stalled machine)
                answered = now + rng.choice([rng.random() * 0.2, rng.random() * 3])
                local.release(ta, answered)
                shared.release(tb, answered)
            await store.flush()
        assert granted > 100  # the sequence exercised the windows, not only the waits
    finally:
        await store.aclose()


async def test_two_accounts_never_share_a_budget(redis_url: str) -> None:
    clock = ManualClock()
    config = LimiterConfig(limit_factor=FACTOR)
    op = get("get_profiles")
    one = RedisRateBudgetStore(redis_url, clock=clock, time="caller", account_id="ACCT1")
    two = RedisRateBudgetStore(redis_url, clock=clock, time="caller", account_id="ACCT2")
    again = RedisRateBudgetStore(redis_url, clock=clock, time="caller", account_id="ACCT1")
    try:
        first = RateLimiter(clock=clock, config=config, store=one)
        for _ in range(3):  # the burst of ACCT1
            assert (await first.acquire("key-a", op)).waited == 0
        # ACCT2, even under the same credential fingerprint: a budget of its own
        second = RateLimiter(clock=clock, config=config, store=two)
        for _ in range(3):
            assert (await second.acquire("key-a", op)).waited == 0
        # another process (and another key) of ACCT1 finds its burst spent
        third = RateLimiter(clock=clock, config=config, store=again)
        assert (await third.acquire("key-b", op)).waited > 0
    finally:
        for store in (one, two, again):
            await store.aclose()


def _run_workers(server: EmulatorServer, redis: str, workers: int, requests: int) -> int:
    """Start ``workers`` processes at once on one emulator account; the 429s they drew."""
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(WORKER),
                server.base_url,
                server.api_key,
                redis,
                str(requests),
                str(FACTOR),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(workers)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        for proc in procs:
            out, _ = proc.communicate(timeout=120)
            assert proc.returncode == 0
            assert out.strip() == f"sent {requests}"
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    stats = server.state.stats.snapshot()["operations"]["get_profiles"]
    return int(stats.get("throttled", 0))


def test_processes_sharing_one_budget_stay_under_the_accounts_windows(
    redis_url: str, emulator_factory: Callable[..., EmulatorServer]
) -> None:
    server = emulator_factory(rate_limit_factor=FACTOR, rate_limit_algorithm="fixed-window")
    # 3 workers × 4 requests against a 3/s burst: alone, each would send its 3 at once
    assert _run_workers(server, redis_url, workers=3, requests=4) == 0


def test_without_the_shared_store_the_same_workers_draw_429s(
    emulator_factory: Callable[..., EmulatorServer],
) -> None:
    # the control: the test above can fail
    server = emulator_factory(rate_limit_factor=FACTOR, rate_limit_algorithm="fixed-window")
    assert _run_workers(server, "none", workers=3, requests=4) > 0


async def test_redis_restarted_mid_run_the_limiter_waits_reconnects_and_goes_on(
    tmp_path: Path,
) -> None:
    server = RedisServer(tmp_path)
    server.start()
    clock = SystemClock()
    config = LimiterConfig(limit_factor=FACTOR)
    store = RedisRateBudgetStore(server.url, clock=clock, unavailable_timeout=30)
    limiter = RateLimiter(clock=clock, config=config, store=store)
    op = get("get_profiles")
    try:
        (await limiter.acquire("acct", op)).finish(200)
        server.stop()
        pending = asyncio.create_task(limiter.acquire("acct", op))
        await asyncio.sleep(0.5)  # the take is retrying against a closed port meanwhile
        assert not pending.done()
        server.start()
        permit = await asyncio.wait_for(pending, 30)
        permit.finish(200)
        (await limiter.acquire("acct", op)).finish(200)
    finally:
        await store.aclose()
        server.stop()


async def test_redis_gone_for_good_is_one_clear_error_and_nothing_sent(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    url = server.url.replace("redis://", "redis://:s3cret-pass@")
    clock = ManualClock()  # the retries' backoff runs on it: the timeout passes at once
    store = RedisRateBudgetStore(url, clock=clock, unavailable_timeout=5)
    limiter = RateLimiter(clock=clock, config=LimiterConfig(limit_factor=FACTOR), store=store)
    try:
        with pytest.raises(RateBudgetUnavailableError) as caught:
            await limiter.acquire("acct", get("get_profiles"))
        message = str(caught.value)
        assert f"127.0.0.1:{server.port}" in message
        assert "unreachable for 5 s" in message
        assert "s3cret" not in message
        assert "s3cret" not in repr(store)
        assert sum(clock.slept) >= 5
    finally:
        await store.aclose()
