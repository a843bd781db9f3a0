"""How much of Klaviyo's rate-limit windows the client uses, and how many 429s it draws.

kbridge's client and the emulator run in one process on one simulated clock
(the client's waits advance it), so minutes of traffic take seconds and the
figures do not depend on this machine's speed. One operation per rate tier,
one paced client per run, under both of the emulator's algorithms (Klaviyo
documents fixed windows; integrators describe a leaky bucket).

Short runs (the default table): ``--requests`` requests per tier, the time
they took beside the ceiling, the time the documented windows need for them
(burst a second, steady a minute, sent as early as the windows allow), and
the 429s drawn. A second table has another client spend the tier's burst
first under the leaky bucket, so the client's first request meets a 429 its
windows did not predict: it should draw that one and no more.

Over loopback (``--loopback 10,30``): the same short runs of GET /api/profiles
against the emulator in its own thread on the real clock, at
``--loopback-factor`` (0.04: 3/s, 30/min, the issue's case) so they take
seconds, not hours. Here responses take real time, so this is where counting
a request at its response time (not a jitter allowance) shows.

Long runs (``--minutes``, as docs/benchmarks.md's table): requests per minute each
tier sustains, beside the published steady limit.

Usage: python -m benchmarks.pacing [--requests 10,30,100,1000] [--factor 1]
       [--loopback 10,30] [--loopback-factor 0.04] [--minutes 0]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from rich.console import Console
from rich.table import Table

from kbridge import catalog
from kbridge.api import AsyncClient, ClientConfig, LimiterConfig
from kbridge.api.ratelimit import window_allowance
from kbridge.api.transport import default_transport
from kbridge.catalog import RateLimit
from kbridge.core import ManualClock, SystemClock
from kbridge.emulator import EmulatorConfig, EmulatorServer, SimClock, create_app
from kbridge.emulator.config import RateLimitAlgorithm

#: one GET per tier the emulator serves: XS, M, L (lists), L (profiles), XL (long runs)
OPERATIONS = ("get_accounts", "get_metrics", "get_lists", "get_profiles", "get_events")
#: one GET per tier for the short runs: XS, S, M, L, XL
TIERS = ("get_accounts", "get_tags", "get_metrics", "get_profiles", "get_events")
ALGORITHMS: tuple[RateLimitAlgorithm, ...] = ("fixed-window", "leaky-bucket")
BASE = "http://emulator.invalid"


@dataclass(frozen=True, slots=True)
class Run:
    """One short run: what it took, what the windows needed, what the server refused."""

    requests: int
    elapsed: float
    ceiling: float
    throttled: int
    fallbacks: tuple[str, ...]

    @property
    def share(self) -> float:
        """The windows' time for these requests over the time they took (1.0: as fast)."""
        return 1.0 if self.elapsed <= 1e-6 else min(1.0, self.ceiling / self.elapsed)


def ceiling_seconds(limit: RateLimit, requests: int) -> float:
    """Seconds from the first request to the last when every request goes as soon as the
    sliding burst and steady windows allow: the fastest a client that cannot see the
    server's window alignment may send them."""
    for second in itertools.count():
        if window_allowance(limit, float(second)) >= requests:
            return float(second)
    raise AssertionError("unreachable")


def _scaled(limit: RateLimit, factor: float) -> RateLimit:
    return RateLimit(
        burst=max(1, int(limit.burst * factor + 1e-9)),
        steady=max(1, int(limit.steady * factor + 1e-9)),
        daily=limit.daily,
    )


async def _short(
    op_id: str, algorithm: RateLimitAlgorithm, requests: int, factor: float, *, spent: bool
) -> Run:
    # Simulated time starts today, so the client's pinned revision is not "in the future".
    clock = ManualClock(datetime(2026, 11, 23, tzinfo=UTC))
    config = EmulatorConfig(
        profiles=200,
        events=2000,
        rate_limit_factor=factor,
        rate_limit_algorithm=algorithm,
        public_base_url=BASE,
    )
    app = create_app(config, clock=SimClock(base=clock))
    key = app.state.emulator.api_key
    transport = httpx.ASGITransport(app=app)
    limit = _scaled(catalog.get(op_id).rate_limit, factor)
    paced = ClientConfig(limiter=LimiterConfig(limit_factor=factor))
    async with AsyncClient(key, base_url=BASE, transport=transport, clock=clock, config=paced) as c:
        if spent:  # another integration on the account takes the whole burst first
            unpaced = ClientConfig(limiter=LimiterConfig(limit_factor=None))
            async with AsyncClient(
                key, base_url=BASE, transport=transport, clock=clock, config=unpaced
            ) as other:
                for _ in range(limit.burst):
                    await other.get_document(op_id)
        start = clock.monotonic()
        for _ in range(requests):
            await c.get_document(op_id)
        elapsed = clock.monotonic() - start
        fallbacks = c.rate_limiter.fallbacks
    stats = app.state.emulator.stats.snapshot()["operations"].get(op_id, {})
    return Run(
        requests,
        elapsed,
        ceiling_seconds(limit, requests),
        int(stats.get("throttled", 0)),
        fallbacks,
    )


def _limits(op_id: str, factor: float) -> str:
    limit = _scaled(catalog.get(op_id).rate_limit, factor)
    return f"{limit.burst}/s, {limit.steady}/m"


def short_runs(sizes: list[int], factor: float, console: Console) -> None:
    table = Table(
        title=(
            f"short runs at {factor:g} × Klaviyo's limits: time taken beside what the windows "
            "need (ceiling), both emulator algorithms"
        )
    )
    for col in ("operation", "limits", "requests", "ceiling"):
        table.add_column(col, justify="left" if col in ("operation", "limits") else "right")
    for algorithm in ALGORITHMS:
        for col in ("elapsed", "%", "429s"):
            table.add_column(f"{algorithm}\n{col}", justify="right")
    for op_id in TIERS:
        for n in sizes:
            runs = [asyncio.run(_short(op_id, a, n, factor, spent=False)) for a in ALGORITHMS]
            cells = [_limits(op_id, factor), f"{n:,}", f"{runs[0].ceiling:,.0f} s"]
            for run in runs:
                cells += [f"{run.elapsed:,.2f} s", f"{run.share:.1%}", str(run.throttled)]
            table.add_row(op_id, *cells)
    console.print(table)

    shared = Table(
        title=(
            "leaky bucket, another client spends the burst first: the 429 the windows did "
            "not predict, then the token-bucket fallback"
        )
    )
    for col in ("operation", "limits", "requests", "ceiling", "elapsed", "%", "429s", "pacing"):
        shared.add_column(col, justify="left" if col in ("operation", "limits") else "right")
    n = sorted(sizes)[len(sizes) // 2] if sizes else 30
    for op_id in TIERS:
        run = asyncio.run(_short(op_id, "leaky-bucket", n, factor, spent=True))
        shared.add_row(
            op_id,
            _limits(op_id, factor),
            f"{n:,}",
            f"{run.ceiling:,.0f} s",
            f"{run.elapsed:,.2f} s",
            f"{run.share:.1%}",
            str(run.throttled),
            "token bucket" if run.fallbacks else "windows",
        )
    console.print(shared)


class _Recording(httpx.AsyncBaseTransport):
    """The wire, noting when each request is handed to it (its send time)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, clock: SystemClock) -> None:
        self.inner, self.clock, self.sent = inner, clock, list[float]()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(self.clock.monotonic())
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _loopback(algorithm: RateLimitAlgorithm, requests: int, factor: float) -> Run:
    op_id = "get_profiles"
    config = EmulatorConfig(
        profiles=200, events=0, rate_limit_factor=factor, rate_limit_algorithm=algorithm
    )
    clock = SystemClock()
    with EmulatorServer(config) as server:
        inner = default_transport(server.base_url, proxies=()) or httpx.AsyncHTTPTransport()
        wire = _Recording(inner, clock)
        paced = ClientConfig(limiter=LimiterConfig(limit_factor=factor))
        async with AsyncClient(
            server.api_key, base_url=server.base_url, transport=wire, clock=clock, config=paced
        ) as client:
            for _ in range(requests):
                await client.get_document(op_id)
            fallbacks = client.rate_limiter.fallbacks
        stats = server.state.stats.snapshot()["operations"].get(op_id, {})
    limit = _scaled(catalog.get(op_id).rate_limit, factor)
    return Run(
        requests,
        wire.sent[-1] - wire.sent[0],
        ceiling_seconds(limit, requests),
        int(stats.get("throttled", 0)),
        fallbacks,
    )


def loopback_runs(sizes: list[int], factor: float, console: Console) -> None:
    table = Table(
        title=(
            f"GET /api/profiles over loopback, real clock, {_limits('get_profiles', factor)} "
            f"(× {factor:g}): first send to last"
        )
    )
    for col in ("algorithm", "requests", "ceiling", "elapsed", "%", "429s", "pacing"):
        table.add_column(col, justify="left" if col == "algorithm" else "right")
    for algorithm in ALGORITHMS:
        for n in sizes:
            run = asyncio.run(_loopback(algorithm, n, factor))
            table.add_row(
                algorithm,
                f"{n:,}",
                f"{run.ceiling:,.0f} s",
                f"{run.elapsed:,.2f} s",
                f"{run.share:.1%}",
                str(run.throttled),
                "token bucket" if run.fallbacks else "windows",
            )
    console.print(table)


async def _drive(op_id: str, algorithm: RateLimitAlgorithm, minutes: float) -> tuple[int, int]:
    clock = ManualClock(datetime(2026, 11, 23, tzinfo=UTC))
    config = EmulatorConfig(
        profiles=200, events=2000, rate_limit_algorithm=algorithm, public_base_url=BASE
    )
    app = create_app(config, clock=SimClock(base=clock))
    key = app.state.emulator.api_key
    transport = httpx.ASGITransport(app=app)
    served = 0
    async with AsyncClient(key, base_url=BASE, transport=transport, clock=clock) as client:
        start = clock.monotonic()
        while True:
            await client.get_document(op_id)
            # responses take no simulated time: this is when it was sent; one sent at the
            # end of the span belongs to the next minute
            if clock.monotonic() - start >= minutes * 60:
                break
            served += 1
    stats = app.state.emulator.stats.snapshot()["operations"].get(op_id, {})
    return served, int(stats.get("throttled", 0))


def long_runs(minutes: float, console: Console) -> None:
    table = Table(title=f"client pacing over {minutes:g} simulated minutes, one client per op")
    for col in ("operation", "limits", "emulator algorithm", "per minute", "ceiling", "%", "429s"):
        table.add_column(
            col, justify="left" if col in ("operation", "emulator algorithm") else "right"
        )
    for op_id in OPERATIONS:
        rl = catalog.get(op_id).rate_limit
        for algorithm in ALGORITHMS:
            served, throttled = asyncio.run(_drive(op_id, algorithm, minutes))
            per_min = served / minutes
            table.add_row(
                op_id,
                f"{rl.burst}/s, {rl.steady}/m",
                algorithm,
                f"{per_min:.1f}",
                str(rl.steady),
                f"{per_min / rl.steady:.1%}",
                str(throttled),
            )
    console.print(table)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--requests",
        default="10,30,100,1000",
        help="comma-separated run sizes for the short-run table ('' to skip it)",
    )
    parser.add_argument(
        "--factor", type=float, default=1.0, help="the limits as a multiple of Klaviyo's"
    )
    parser.add_argument(
        "--loopback",
        default="10,30",
        help="run sizes over loopback on the real clock ('' to skip; each takes seconds)",
    )
    parser.add_argument("--loopback-factor", type=float, default=0.04)
    parser.add_argument(
        "--minutes", type=float, default=0.0, help="also the long-run table over this many"
    )
    args = parser.parse_args(argv)
    console = Console(width=150)
    sizes = [int(x) for x in args.requests.split(",") if x.strip()]
    if sizes:
        short_runs(sizes, args.factor, console)
    looped = [int(x) for x in args.loopback.split(",") if x.strip()]
    if looped:
        loopback_runs(looped, args.loopback_factor, console)
    if args.minutes > 0:
        long_runs(args.minutes, console)


if __name__ == "__main__":
    main()
