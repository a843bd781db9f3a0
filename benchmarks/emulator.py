"""The emulator at scale: memory, page latency, and the published ceilings sustained.

Three measurements, one table each (issue "Emulator core", "Scale and speed"):

1. Memory: a 200k-profile, 2M-event account loaded in one process — peak RSS
   against the 2 GiB ceiling, and how long generation took.
2. Page latency: full pages (100 profiles; 1000 events, filtered and sorted by
   datetime, read once and then again) served over loopback; median *server*
   time from the emulator's own ``/_emulator/stats`` against the 10 ms ceiling.
3. Sustained ceilings: GET /api/profiles and GET /api/events driven together at
   ``--rate-limits spec`` (``--walkers`` concurrent page walkers per operation,
   paced by one shared kbridge ``RateLimiter``) for ``--seconds``; requests
   served per minute against the published steady limit, and 429s, with the
   CPU the emulator and the load generator each used. The load generator is
   plain ``httpx`` with kbridge's headers that follows each page's
   ``links.next`` without building resources (kbridge's client spends ~20 ms
   CPU decoding a 1000-event page, which on a 2-core machine ran out first).

The emulator runs as ``kbridge emulator serve`` in its own process, so the
load generator does not share its interpreter lock. Its peak RSS is read at
start and again at the end (served events' JSON is cached, bounded).

Usage: python -m benchmarks.emulator [--profiles 200000] [--events 2000000] [--seconds 65]
       [--only latency|sustained]  (the memory table is always printed: it costs nothing)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
from rich.console import Console
from rich.table import Table

from kbridge import catalog
from kbridge.api import AsyncClient
from kbridge.api.auth import fingerprint
from kbridge.api.ratelimit import RateLimiter
from kbridge.core import SystemClock

console = Console()
REVISION = catalog.REVISION


class ServerProcess:
    """``kbridge emulator serve`` in its own process, so client and server don't share a GIL."""

    def __init__(self, args: list[str]) -> None:
        self.args = args

    def __enter__(self) -> ServerProcess:
        exe = Path(sys.executable).with_name("kbridge")
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            [str(exe), "emulator", "serve", "--port", "0", *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        url_line = self.proc.stdout.readline()
        key_line = self.proc.stdout.readline()
        if "listening on" not in url_line:
            self.proc.kill()
            raise SystemExit(f"the emulator did not start: {url_line!r}")
        self.load_seconds = time.perf_counter() - started
        self.base_url = url_line.rsplit(" ", 1)[1].strip()
        self.api_key = key_line.rsplit(" ", 1)[1].strip()
        return self

    def peak_rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_seconds(self) -> float:
        """User + system CPU the emulator process has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
        return ticks / os.sysconf("SC_CLK_TCK")

    def __exit__(self, *exc: object) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _stats(base: str) -> dict[str, dict[str, object]]:
    ops: dict[str, dict[str, object]] = httpx.get(f"{base}/_emulator/stats", timeout=30).json()[
        "operations"
    ]
    return ops


def _count(ops: dict[str, dict[str, object]], op_id: str, key: str) -> int:
    value = ops.get(op_id, {}).get(key, 0)
    return value if isinstance(value, int) else 0


async def _walk(base: str, key: str, op_id: str, params: dict[str, str], pages: int) -> list[float]:
    """Walk ``pages`` pages with kbridge's paced client; client-side seconds per page."""
    seconds: list[float] = []
    async with AsyncClient(key, base_url=base) as client:
        t0 = time.perf_counter()
        async for _ in client.iter_pages(op_id, params=params):
            seconds.append(time.perf_counter() - t0)
            if len(seconds) >= pages:
                break
            t0 = time.perf_counter()
    return seconds


def latency(server: ServerProcess, pages: int) -> Table:
    table = Table(title="full pages over loopback (server time from /_emulator/stats)")
    for col in ("request", "pages", "server p50 ms", "server p95 ms", "ceiling p50"):
        table.add_column(col, justify="right" if col != "request" else "left")
    events = {"page[size]": "1000", "sort": "-datetime"}
    cases = [
        ("100 profiles", "get_profiles", {"page[size]": "100"}),
        ("1000 events, -datetime, first read", "get_events", events),
        # The same pages again: each event's JSON is kept (bounded) once served.
        ("1000 events, -datetime, read again", "get_events", events),
    ]
    for label, op_id, params in cases:
        httpx.delete(f"{server.base_url}/_emulator/stats", timeout=30).raise_for_status()
        walked = asyncio.run(_walk(server.base_url, server.api_key, op_id, params, pages))
        lat = _stats(server.base_url)[op_id]["latency_ms"]
        assert isinstance(lat, dict)
        table.add_row(label, str(len(walked)), f"{lat['p50']:.2f}", f"{lat['p95']:.2f}", "10 ms")
    return table


def _next_link(body: bytes) -> str | None:
    """The document's top-level ``links.next``, without decoding its 1000 resources.

    The top-level ``links`` object is the document's last member when nothing is
    included (these walks include nothing); anything else falls back to a full decode.
    """
    at = body.rfind(b'"links":{"self":')
    try:
        links = orjson.loads(body[at + len(b'"links":') : -1]) if at > 0 else None
    except orjson.JSONDecodeError:
        links = None
    if not isinstance(links, dict) or "next" not in links:
        links = orjson.loads(body)["links"]
    value = links["next"]
    return value if isinstance(value, str) else None


async def _drive(base: str, key: str, seconds: float, walkers: int) -> None:
    """Concurrent page walkers per operation, all paced by one shared kbridge limiter.

    A light load generator: real HTTP over loopback with the headers kbridge's
    client sends, paced by kbridge's own :class:`RateLimiter` (which also reads
    ``RateLimit-*`` and ``Retry-After``), following each page's ``links.next``,
    but not building resources from the bodies: that costs the client ~20 ms of
    CPU per 1000-event page, and on a 2-core machine it, not the emulator, would
    be what runs out. A 429 is retried after the limiter has taken it in.
    """
    deadline = time.monotonic() + seconds
    limiter = RateLimiter(clock=SystemClock())
    account = fingerprint("key", key)
    headers = {
        "authorization": f"Klaviyo-API-Key {key}",
        "accept": "application/vnd.api+json",
        "revision": REVISION,
    }

    async def walk(http: httpx.AsyncClient, op_id: str, params: dict[str, str]) -> None:
        op = catalog.get(op_id)
        first = base + op.path
        url: str | None = None
        while time.monotonic() < deadline:
            permit = await limiter.acquire(account, op, params)
            try:
                # Walk pages; start over at the end so the load never runs dry.
                response = await http.get(url or first, params=None if url else params)
            except BaseException:
                permit.finish(None)
                raise
            permit.finish(response.status_code, response.headers)
            if response.status_code == 429:
                continue
            response.raise_for_status()
            url = _next_link(response.content)

    async with httpx.AsyncClient(headers=headers, timeout=60) as http:
        await asyncio.gather(
            *(walk(http, "get_profiles", {"page[size]": "100"}) for _ in range(walkers)),
            *(walk(http, "get_events", {"page[size]": "1000"}) for _ in range(walkers)),
        )


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def sustained(server: ServerProcess, seconds: float, walkers: int) -> Table:
    before = _stats(server.base_url)
    started = time.monotonic()
    server_cpu, client_cpu = server.cpu_seconds(), _own_cpu_seconds()
    asyncio.run(_drive(server.base_url, server.api_key, seconds, walkers))
    elapsed = time.monotonic() - started
    server_cpu = server.cpu_seconds() - server_cpu
    client_cpu = _own_cpu_seconds() - client_cpu
    after = _stats(server.base_url)
    table = Table(
        title=f"published ceilings sustained ({elapsed:.0f} s, --rate-limits spec)",
        caption=(
            f"CPU busy: emulator {server_cpu / elapsed:.0%}, "
            f"load generator {client_cpu / elapsed:.0%} (of one core; load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
        ),
    )
    for col in ("operation", "requests", "per minute", "ceiling /min", "% of ceiling", "429s"):
        table.add_column(col, justify="left" if col == "operation" else "right")
    for op_id in ("get_profiles", "get_events"):
        requests = _count(after, op_id, "requests") - _count(before, op_id, "requests")
        throttled = _count(after, op_id, "throttled") - _count(before, op_id, "throttled")
        per_min = requests / elapsed * 60
        ceiling = catalog.get(op_id).rate_limit.steady
        table.add_row(
            op_id,
            str(requests),
            f"{per_min:.0f}",
            str(ceiling),
            f"{per_min / ceiling:.1%}",
            str(throttled),
        )
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--profiles", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--pages", type=int, default=100, help="pages per latency case")
    parser.add_argument("--seconds", type=float, default=65.0, help="sustained-load duration")
    parser.add_argument("--walkers", type=int, default=4, help="concurrent walkers per operation")
    parser.add_argument(
        "--only",
        choices=("latency", "sustained"),
        help="run only this measurement (after the memory table)",
    )
    args = parser.parse_args(argv)

    serve_args = ["--profiles", str(args.profiles), "--events", str(args.events)]
    with ServerProcess([*serve_args, "--rate-limits", "spec"]) as server:
        rss = server.peak_rss_mib()
        mem = Table(title="account held in memory (emulator process)")
        for col in ("profiles", "events", "start s", "peak RSS MiB", "ceiling MiB", "% of ceiling"):
            mem.add_column(col, justify="right")
        mem.add_row(
            f"{args.profiles:,}",
            f"{args.events:,}",
            f"{server.load_seconds:.1f}",
            f"{rss:.0f}",
            "2048",
            f"{rss / 2048:.0%}",
        )
        console.print(mem)
        if args.only in (None, "latency"):
            console.print(latency(server, args.pages))
        if args.only in (None, "sustained"):
            console.print(sustained(server, args.seconds, args.walkers))
        end = server.peak_rss_mib()
        console.print(f"emulator peak RSS at the end: {end:.0f} MiB ({end / 2048:.0%} of 2048 MiB)")


if __name__ == "__main__":
    main()
