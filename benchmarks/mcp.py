"""``kbridge mcp``: the size of ``tools/list`` and the latency of warehouse-backed tool calls.

A seeded emulator account is synced into a DuckDB file; ``kbridge mcp`` is then
spawned as an MCP client spawns it (stdio) and driven by the ``mcp`` SDK's own
client. ``tools/list`` is measured as serialised on the wire (one connection, and
two, where every tool takes ``connection``) beside the 30 KB ceiling of issue #24.
Each warehouse tool is called ``--calls`` times (after one uncounted warm-up);
the table gives p50 and p95 round trips beside the 200 ms ceiling, and the API
requests the emulator counted meanwhile (the ceiling: none).

Usage: python -m benchmarks.mcp [--profiles 2000] [--events 20000] [--calls 40]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from mcp import Client, StdioServerParameters
from rich.console import Console
from rich.table import Table

from kbridge import sync
from kbridge.api import AsyncClient
from kbridge.emulator.config import EmulatorConfig
from kbridge.emulator.server import EmulatorServer
from kbridge.warehouse import open_warehouse

_KBRIDGE = str(Path(sys.executable).with_name("kbridge"))
CEILING_KB = 30.0
CEILING_MS = 200.0

CALLS: list[tuple[str, dict[str, Any]]] = [
    ("warehouse_sql", {"sql": "SELECT count(*) FROM events"}),
    (
        "warehouse_sql",
        {
            "sql": "SELECT metric_id, count(*) AS n FROM events GROUP BY 1 ORDER BY n DESC",
            "max_rows": 50,
        },
    ),
    ("warehouse_tables", {}),
    ("analytics_lifecycle", {}),
    ("analytics_consent", {}),
    ("analytics_campaign_performance", {"top": 10}),
]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _tools_size(env: dict[str, str], *args: str) -> tuple[int, float]:
    params = StdioServerParameters(command=_KBRIDGE, args=["mcp", *args], env=env)
    async with Client(params) as client:
        tools = await client.list_tools()
    return len(tools.tools), len(tools.model_dump_json(by_alias=True, exclude_none=True)) / 1024


async def _latencies(
    env: dict[str, str], warehouse: str, calls: int, base_url: str
) -> list[tuple[str, float, float, int]]:
    params = StdioServerParameters(
        command=_KBRIDGE, args=["mcp", "--warehouse", warehouse], env=env
    )
    rows = []
    async with Client(params) as client, httpx.AsyncClient(base_url=base_url) as control:
        for name, arguments in CALLS:
            first = await client.call_tool(name, arguments)  # warm-up, not counted
            if first.is_error:
                raise SystemExit(f"{name} failed: {first.content[0].text}")  # type: ignore[union-attr]
            (await control.delete("/_emulator/stats")).raise_for_status()
            times = []
            for _ in range(calls):
                started = time.perf_counter()
                await client.call_tool(name, arguments)
                times.append((time.perf_counter() - started) * 1000)
            requests = (await control.get("/_emulator/stats")).json()["requests"]
            shown = arguments.get("sql") or (json.dumps(arguments) if arguments else "")
            label = f"{name} {shown[:34]}…" if len(shown) > 34 else f"{name} {shown}".strip()
            rows.append((label, statistics.median(times), _percentile(times, 0.95), requests))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--profiles", type=int, default=2000)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=40)
    args = parser.parse_args(argv)

    config = EmulatorConfig(
        seed=7, profiles=args.profiles, events=args.events, rate_limit_factor=None
    )
    console = Console(width=110)
    with tempfile.TemporaryDirectory() as tmp, EmulatorServer(config) as server:
        url = f"duckdb:///{Path(tmp) / 'kb.duckdb'}"
        wh = open_warehouse(url)

        async def fill() -> None:
            async with AsyncClient(server.api_key, base_url=server.base_url) as client:
                await sync.run(
                    client, wh, streams=["profiles", "metrics", "events", "campaigns", "flows"]
                )

        try:
            asyncio.run(fill())
        finally:
            wh.close()
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("KBRIDGE_", "KLAVIYO_"))}
        env = {
            **clean,
            "KBRIDGE_HOME": str(Path(tmp) / "home"),
            "KLAVIYO_API_KEY": server.api_key,
            "KLAVIYO_BASE_URL": server.base_url,
        }

        sizes = Table(title="tools/list on the wire")
        for col in ("server", "tools", "KB", "ceiling KB"):
            sizes.add_column(col, justify="left" if col == "server" else "right")
        for label, extra in (
            ("kbridge mcp --warehouse …", ("--warehouse", url)),
            ("kbridge mcp --read-only --warehouse …", ("--read-only", "--warehouse", url)),
        ):
            count, kb = asyncio.run(_tools_size(env, *extra))
            sizes.add_row(label, str(count), f"{kb:.1f}", f"{CEILING_KB:.0f}")
        console.print(sizes)

        calls = Table(
            title=f"warehouse tool calls over stdio ({args.profiles} profiles, {args.events} "
            f"events; {args.calls} calls each)"
        )
        for col in ("tool call", "p50 ms", "p95 ms", "ceiling ms", "API requests"):
            calls.add_column(col, justify="left" if col == "tool call" else "right")
        for label, p50, p95, requests in asyncio.run(
            _latencies(env, url, args.calls, server.base_url)
        ):
            calls.add_row(label, f"{p50:.1f}", f"{p95:.1f}", f"{CEILING_MS:.0f}", str(requests))
        console.print(calls)


if __name__ == "__main__":
    main()
