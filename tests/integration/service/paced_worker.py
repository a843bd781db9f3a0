"""One worker process for the shared-budget tests: N paced GETs of /api/profiles.

``python paced_worker.py BASE_URL API_KEY REDIS_URL|none REQUESTS FACTOR``: prints
``ready``, waits for a line on stdin (so every worker starts together), sends
its requests through a limiter whose windows live in Redis (or in this
process with ``none``), then prints how many it sent.
"""

from __future__ import annotations

import asyncio
import sys

from kbridge.api import AsyncClient, ClientConfig, LimiterConfig
from kbridge.api.ratelimit import RateLimiter
from kbridge.core import SystemClock
from kbridge.service.ratestore import RedisRateBudgetStore


async def main(base_url: str, key: str, redis_url: str, requests: int, factor: float) -> int:
    clock = SystemClock()
    limiter_config = LimiterConfig(limit_factor=factor)
    store = None if redis_url == "none" else RedisRateBudgetStore(redis_url, clock=clock)
    limiter = RateLimiter(clock=clock, config=limiter_config, store=store)
    config = ClientConfig(limiter=limiter_config)
    async with AsyncClient(
        key, base_url=base_url, clock=clock, config=config, rate_limiter=limiter
    ) as client:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        for _ in range(requests):
            await client.get_document("get_profiles")
    if store is not None:
        await store.aclose()
    return requests


if __name__ == "__main__":
    base, key, url, n, f = sys.argv[1:6]
    print("sent", asyncio.run(main(base, key, url, int(n), float(f))), flush=True)
