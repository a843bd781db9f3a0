"""The client's pacing against the emulator's rate limits, both algorithms, one simulated clock.

The emulator app runs in process (``httpx.ASGITransport``) on a SimClock over the
client's ManualClock, so the client's waits move the server's windows too: minutes
of pacing take milliseconds and nothing depends on this machine's speed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx
import pytest

from kbridge.api import AsyncClient, ClientConfig, LimiterConfig
from kbridge.core import ManualClock
from kbridge.emulator import EmulatorConfig, SimClock, create_app
from kbridge.emulator.config import RateLimitAlgorithm

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

BASE = "http://emulator.invalid"
FACTOR = 0.04  # GET /api/profiles at 3/s, 30/min


@asynccontextmanager
async def emulated(
    algorithm: RateLimitAlgorithm,
) -> AsyncIterator[tuple[ManualClock, httpx.ASGITransport, str, dict[str, int]]]:
    # Simulated time starts today, so the client's pinned revision is not "in the future".
    clock = ManualClock(datetime(2026, 11, 23, tzinfo=UTC))
    config = EmulatorConfig(
        profiles=20,
        events=0,
        rate_limit_factor=FACTOR,
        rate_limit_algorithm=algorithm,
        public_base_url=BASE,
    )
    app = create_app(config, clock=SimClock(base=clock))
    throttled: dict[str, int] = {}
    yield clock, httpx.ASGITransport(app=app), app.state.emulator.api_key, throttled
    stats = app.state.emulator.stats.snapshot()["operations"]
    throttled.update({op: int(s.get("throttled", 0)) for op, s in stats.items()})


def paced(key: str, transport: httpx.ASGITransport, clock: ManualClock) -> AsyncClient:
    config = ClientConfig(limiter=LimiterConfig(limit_factor=FACTOR))
    return AsyncClient(key, base_url=BASE, transport=transport, clock=clock, config=config)


async def test_fixed_windows_a_30_page_run_takes_the_10_s_the_windows_allow() -> None:
    async with emulated("fixed-window") as (clock, transport, key, throttled):
        async with paced(key, transport, clock) as client:
            for _ in range(30):
                await client.get_document("get_profiles")
            assert client.rate_limiter.fallbacks == ()
        assert clock.monotonic() <= 10.0  # the token bucket took 61 s
    assert throttled.get("get_profiles", 0) == 0


@pytest.mark.parametrize("algorithm", ["fixed-window", "leaky-bucket"])
async def test_a_long_run_fills_each_minute_without_a_429(algorithm: RateLimitAlgorithm) -> None:
    async with emulated(algorithm) as (clock, transport, key, throttled):
        async with paced(key, transport, clock) as client:
            for _ in range(100):
                await client.get_document("get_profiles")
            assert client.rate_limiter.fallbacks == ()
        # 30 a minute at 3 a second: the 100th request goes 3 s into the fourth minute
        assert clock.monotonic() == pytest.approx(183.0, abs=0.01)
    assert throttled.get("get_profiles", 0) == 0


async def test_a_leaky_bucket_spent_by_someone_else_costs_one_429_then_the_client_adapts() -> None:
    async with emulated("leaky-bucket") as (clock, transport, key, throttled):
        other = AsyncClient(
            key,
            base_url=BASE,
            transport=transport,
            clock=clock,
            config=ClientConfig(limiter=LimiterConfig(limit_factor=None)),
        )
        async with other, paced(key, transport, clock) as client:
            for _ in range(3):  # another integration fills the burst bucket
                await other.get_document("get_profiles")
            for _ in range(40):
                await client.get_document("get_profiles")
            assert client.rate_limiter.fallbacks == ("get_profiles",)
            state = client.rate_limiter.state(client.account, "get_profiles")
            assert state is not None
            assert state.mode == "token-bucket"
    assert throttled["get_profiles"] == 1
