"""One Klaviyo account's rate budget shared by N processes through Redis (#20 item 5).

N worker processes (``--workers 1,2,4``) page through the profiles of ONE
emulator account at once, as the ``profiles`` stream of a sync does
(``GET /api/profiles``, full pages), against ``kbridge emulator serve
--rate-limits FACTOR`` (fixed windows, in its own process); each client paces
to the same scaled limits with its windows in one Redis (Debian's
``redis-server`` on loopback, no persistence, as the tests start it). Every
worker fetches every page, so N workers send N × the pages. (A whole
``kbridge sync`` first reads ``get_accounts``, whose tier is 1 a minute at
0.05: N syncs would mostly queue for that, and the table would measure it.)

The table: requests the emulator served for ``get_profiles`` and the seconds
from the start signal to the last worker's end, beside the ceiling: the
shortest time the account's sliding windows (burst a second, steady a minute,
from the first request) allow for that many requests; the combined rate
beside the windows' rate for them; and the 429s the
server sent. With ``--control``, the largest N runs again with each process
pacing alone (in-process budgets): what the shared budget prevents.

Usage: python -m benchmarks.shared_budget [--workers 1,2,4] [--profiles 1000]
                                          [--factor 0.05] [--control]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks.emulator import ServerProcess, _count, _stats
from kbridge import catalog
from kbridge.api import AsyncClient, ClientConfig, LimiterConfig
from kbridge.api.ratelimit import RateLimiter, window_allowance
from kbridge.catalog import RateLimit
from kbridge.core import SystemClock
from kbridge.emulator.http.ratelimit import scaled_limit
from kbridge.service.ratestore import RedisRateBudgetStore
from kbridge.testing.redis import RedisServer

console = Console(width=150)
OPERATION = "get_profiles"


def _child(base: str, key: str, redis_url: str | None, factor: float) -> None:
    """One worker: ``ready``, wait for the go line, every page of profiles, ``done``."""
    clock = SystemClock()
    limiter_config = LimiterConfig(limit_factor=factor)
    store = RedisRateBudgetStore(redis_url, clock=clock) if redis_url else None
    limiter = RateLimiter(clock=clock, config=limiter_config, store=store)
    config = ClientConfig(limiter=limiter_config)

    async def go() -> None:
        op = catalog.get(OPERATION)
        params = {"page[size]": str(op.max_page_size)}
        async with AsyncClient(
            key, base_url=base, clock=clock, config=config, rate_limiter=limiter
        ) as client:
            print("ready", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            async for _ in client.iter_pages(OPERATION, params=params):
                pass
        if store is not None:
            await store.aclose()

    asyncio.run(go())
    print("done", flush=True)


def _run(
    server: ServerProcess, redis_url: str | None, workers: int, factor: float
) -> tuple[int, int, float]:
    """(requests served, 429s, seconds) for ``workers`` workers started together."""
    before = _stats(server.base_url)
    procs = []
    for _ in range(workers):
        payload = json.dumps([server.base_url, server.api_key, redis_url, factor])
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "benchmarks.shared_budget", "--child", payload],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    for proc in procs:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise SystemExit("a worker did not start")
    started = time.monotonic()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode != 0 or "done" not in out:
            raise SystemExit(f"a worker failed ({proc.returncode})")
    seconds = time.monotonic() - started
    after = _stats(server.base_url)
    op = OPERATION
    served = _count(after, op, "requests") - _count(before, op, "requests")
    served -= _count(after, op, "throttled") - _count(before, op, "throttled")
    throttled = sum(
        _count(after, name, "throttled") - _count(before, name, "throttled") for name in after
    )
    return served, throttled, seconds


def _needed(limit: RateLimit, requests: int) -> float:
    """The shortest time (seconds from the first request to the last) that the sliding
    windows let ``requests`` requests through in."""
    seconds = 0
    while window_allowance(limit, seconds) < requests:
        seconds += 1
    return float(seconds)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--profiles", type=int, default=1000)
    parser.add_argument("--factor", type=float, default=0.05)
    parser.add_argument("--control", action="store_true")
    parser.add_argument("--child")
    args = parser.parse_args(argv)
    if args.child:
        _child(*json.loads(args.child))
        return
    op = catalog.get(OPERATION)
    assert op.rate_limit is not None
    limit = RateLimit(
        burst=scaled_limit(op.rate_limit.burst, args.factor),
        steady=scaled_limit(op.rate_limit.steady, args.factor),
    )
    table = Table(
        title=f"the profiles of ONE emulator account paged by N processes at once, "
        f"--rate-limits {args.factor:g} (get_profiles {limit.burst}/s, {limit.steady}/min), "
        f"{args.profiles:,} profiles each"
    )
    cols = ("processes", "budget", "requests", "seconds", "ceiling s", "% of ceiling",
            "combined req/s", "ceiling req/s", "429s")  # fmt: skip
    for col in cols:
        table.add_column(col, justify="left" if col == "budget" else "right")
    runs = [(int(n), True) for n in args.workers.split(",")]
    if args.control:
        runs.append((max(n for n, _ in runs), False))
    with (
        tempfile.TemporaryDirectory(prefix="kbridge-bench-shared-") as tmp,
        ServerProcess(
            ["--profiles", str(args.profiles), "--events", "0", "--rate-limits", str(args.factor)]
        ) as server,
    ):
        redis = RedisServer(Path(tmp))
        redis.start()
        try:
            for workers, shared in runs:
                served, throttled, seconds = _run(
                    server, redis.url if shared else None, workers, args.factor
                )
                needed = _needed(limit, served)
                table.add_row(
                    str(workers),
                    "shared (Redis)" if shared else "per process",
                    str(served),
                    f"{seconds:.1f}",
                    f"{needed:.0f}",
                    f"{needed / seconds:.0%}",
                    f"{served / seconds:.2f}",
                    f"{served / max(needed, 1.0):.2f}",
                    str(throttled),
                )
        finally:
            redis.stop()
    console.print(table)


if __name__ == "__main__":
    main(sys.argv[1:])
