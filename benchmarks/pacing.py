"""How much of Klaviyo's rate-limit budget the client uses, without a single 429.

kbridge's client and the emulator run in one process on one simulated clock
(the client's waits advance it), so ``--minutes`` of traffic per operation
take seconds and the figures do not depend on this machine's speed. Each
operation of each rate tier is driven by one paced client; requests served
per minute are set beside the published steady limit, under both of the
emulator's algorithms (Klaviyo documents fixed windows; integrators describe
a leaky bucket).

Usage: python -m benchmarks.pacing [--minutes 5]
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime

import httpx
from rich.console import Console
from rich.table import Table

from kbridge import catalog
from kbridge.api import AsyncClient
from kbridge.core import ManualClock
from kbridge.emulator import EmulatorConfig, SimClock, create_app
from kbridge.emulator.config import RateLimitAlgorithm

#: one GET per tier the emulator serves: XS, M, L (lists), L (profiles), XL
OPERATIONS = ("get_accounts", "get_metrics", "get_lists", "get_profiles", "get_events")
BASE = "http://emulator.invalid"


async def _drive(op_id: str, algorithm: RateLimitAlgorithm, minutes: float) -> tuple[int, int]:
    # Simulated time starts today, so the client's pinned revision is not "in the future".
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
        while clock.monotonic() - start < minutes * 60:
            await client.get_document(op_id)
            served += 1
    stats = app.state.emulator.stats.snapshot()["operations"].get(op_id, {})
    return served, int(stats.get("throttled", 0))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=5.0)
    args = parser.parse_args(argv)
    table = Table(title=f"client pacing over {args.minutes:g} simulated minutes, one client per op")
    for col in ("operation", "limits", "emulator algorithm", "per minute", "ceiling", "%", "429s"):
        table.add_column(
            col, justify="left" if col in ("operation", "emulator algorithm") else "right"
        )
    algorithms: tuple[RateLimitAlgorithm, ...] = ("fixed-window", "leaky-bucket")
    for op_id in OPERATIONS:
        rl = catalog.get(op_id).rate_limit
        for algorithm in algorithms:
            served, throttled = asyncio.run(_drive(op_id, algorithm, args.minutes))
            per_min = served / args.minutes
            table.add_row(
                op_id,
                f"{rl.burst}/s, {rl.steady}/m",
                algorithm,
                f"{per_min:.1f}",
                str(rl.steady),
                f"{per_min / rl.steady:.1%}",
                str(throttled),
            )
    Console(width=130).print(table)


if __name__ == "__main__":
    main()
