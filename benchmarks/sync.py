"""kbridge's sync against the emulator: throughput beside the rate-limit ceiling, and its cost.

Three measurements, one table each (sync issue, "benchmark"):

1. Paced (``--factor``, the emulator's ``--rate-limits FACTOR``; 1 = Klaviyo's
   published limits): the rate-bound streams synced together, as ``kbridge
   sync --rate-limits FACTOR`` does (the client paces to the same scaled
   limits, ``LimiterConfig(limit_factor=FACTOR)``). Requests served per
   minute in steady state (whole minutes from ``--warmup`` seconds after the
   stream's first request, ending a burst before its last; read from the
   emulator's ``/_emulator/stats`` every 0.5 s) beside the ceiling (steady
   requests/min × max page size), and the 429s (all, and in steady state).
   ``--paced-streams new``: the streams #22 added, in runs whose accounts
   suit them (:data:`NEW_PACED_RUNS`), each beside the limits of the
   operation it calls.
2. Unpaced (``--rate-limits off`` on both sides: the emulator enforces no limits
   and the client, ``LimiterConfig(limit_factor=None)``, does not pace, so it
   never idles between requests): each stream synced alone, so the client's
   CPU seconds per record (HTTP body to committed DuckDB row) and its peak
   RSS are that stream's; ceilings 20 µs per event, 50 µs per profile,
   300 MB. Beside the figure all in, the same less the start-up every sync
   pays once (a one-record sync of ``accounts``: warehouse and tables opened,
   client made, one request, file closed), which a small account spreads over
   few records.
3. The same events synced by an existing connector, Singer's ``tap-klaviyo``
   from PyPI (installed into a throwaway venv under /tmp, never a kbridge
   dependency), against the same emulator, beside kbridge's figures.

The emulator runs as ``kbridge emulator serve`` in its own process and every
sync runs in a fresh child process, so ``getrusage`` CPU and peak RSS are the
client's alone (DuckDB's worker threads included), counted from after its imports.

Usage: python -m benchmarks.sync [--profiles 20000] [--events 300000] [--factor 0.05]
                                 [--skip paced,off,tap]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from benchmarks.emulator import ServerProcess, _count, _stats
from kbridge import catalog, sync
from kbridge.api import AsyncClient, ClientConfig, LimiterConfig
from kbridge.emulator.http.ratelimit import scaled_limit

console = Console(width=200)

#: the streams whose requests the rate limits bound, and their per-record CPU ceilings (µs)
PACED_STREAMS = ("profiles", "events", "list_memberships", "segment_memberships")
CPU_CEILING_US = {"events": 20.0, "profiles": 50.0}
RSS_CEILING_MB = 300.0
TAP_PACKAGE = "tap-klaviyo==1.1.5"
TAP_VENV = Path(tempfile.gettempdir()) / "kbridge-bench-tap-klaviyo"


# -- the client, in a child process ---------------------------------------------------------


def _child(
    base: str,
    key: str,
    streams: list[str],
    target: str,
    factor: float | None,
    start_days: int | None = None,
) -> dict[str, Any]:
    """One sync in this (fresh) process, the client paced to ``factor`` × Klaviyo's limits
    (``None``: unpaced); its CPU and peak RSS from getrusage.

    CPU counts from after the imports, DuckDB's included (it is imported when a sync
    opens its warehouse: ~0.15 s, the same for 20 or 2M records), as kbridge's own
    modules are imported before; what is left is the sync's work.
    """
    import kbridge.warehouse.duckdb  # noqa: F401  (start-up, not per record)

    before = resource.getrusage(resource.RUSAGE_SELF)
    start = datetime.now(UTC)
    config = ClientConfig(limiter=LimiterConfig(limit_factor=factor))

    async def go() -> sync.SyncResult:
        async with AsyncClient(key, base_url=base, config=config) as client:
            # as the CLI runs it: the process is the sync
            options = sync.SyncOptions(
                f"duckdb:///{target}",
                streams=streams,
                fewer_collections=True,
                start_date=None if start_days is None else start - timedelta(days=start_days),
            )
            return await sync.run(client, options)

    started = time.perf_counter()
    result = asyncio.run(go())
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {
        "streams": {r.stream: r.to_dict() for r in result.streams.values()},
        "wall": wall,
        "cpu": cpu,
        "peak_rss_mb": after.ru_maxrss / 1024,
        "start_rss_mb": before.ru_maxrss / 1024,
    }


def _run_child(
    server: ServerProcess,
    streams: list[str],
    workdir: Path,
    factor: float | None,
    start_days: int | None = None,
) -> dict[str, Any]:
    """Sync ``streams`` in a fresh process, pacing to ``factor`` (the emulator's own, or None)."""
    target = workdir / f"{'-'.join(streams)}.duckdb"
    target.unlink(missing_ok=True)
    payload = json.dumps(
        [server.base_url, server.api_key, streams, str(target), factor, start_days]
    )
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.sync", "--child", payload],
        capture_output=True,
        text=True,
        check=False,
    )
    target.unlink(missing_ok=True)
    if proc.returncode != 0:
        raise SystemExit(f"the sync of {streams} failed:\n{proc.stderr[-2000:]}")
    doc: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return doc


# -- 1. paced ----------------------------------------------------------------------------


@dataclass
class _Sampler:
    """Polls ``/_emulator/stats`` while a sync runs: (seconds, served, throttled) per operation."""

    base: str
    ops: tuple[str, ...]
    every: float = 0.5
    samples: dict[str, list[tuple[float, int, int]]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._t0 = time.monotonic()

    def _take(self) -> None:
        stats = _stats(self.base)
        now = time.monotonic() - self._t0
        for op in self.ops:
            requests = _count(stats, op, "requests")
            throttled = _count(stats, op, "throttled")
            self.samples.setdefault(op, []).append((now, requests - throttled, throttled))

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self._take()

    def __enter__(self) -> _Sampler:
        self._take()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._take()


def _steady(
    samples: list[tuple[float, int, int]], warmup: float, tail: float
) -> tuple[float, int, float] | None:
    """(served per minute, 429s, seconds) over whole minutes from the operation's first
    request after ``warmup`` s, ending ``tail`` s before its last; None if no whole minute.

    The client's windows slide: it sends a minute's requests as fast as the burst limit
    lets it, then waits for the first of them to leave its window, so its schedule
    repeats every minute (and a little more: each request leaves the window a minute
    after its answer). A span of whole minutes that opens just before a burst holds
    exactly a minute's requests per minute; a span of any other length can hold a
    burst more or less than its share (a minute and ten seconds can see two minutes'
    requests). ``tail`` (a burst's length) keeps the span off the last, short minute.
    """
    active = [k for k, s in enumerate(samples) if s[1] + s[2] > 0]
    if not active:
        return None
    final = samples[-1]
    last = next(s for s in samples if s[1] == final[1] and s[2] == final[2])
    after = samples[active[0]][0] + warmup
    # the sample just before the first one, after the warm-up, that saw a new request
    opening = next(
        (k - 1 for k in range(active[0] + 1, len(samples))
         if samples[k][0] >= after and samples[k][1:] != samples[k - 1][1:]),
        None,
    )  # fmt: skip
    if opening is None:
        return None
    begin = samples[opening]
    minutes = int((last[0] - tail - begin[0]) // 60)
    if minutes < 1:
        return None
    end = [s for s in samples if s[0] <= begin[0] + 60 * minutes][-1]
    return (end[1] - begin[1]) / minutes, end[2] - begin[2], 60.0 * minutes


def _paced_table(
    title: str,
    server: ServerProcess,
    streams: list[str],
    factor: float,
    workdir: Path,
    warmup: float,
    samples_to: Path | None = None,
    start_days: int | None = None,
) -> Table:
    """Sync ``streams`` together against ``server`` (limits × ``factor``), the client paced
    to the same factor; each stream's operation sampled, beside its steady ceiling."""
    ops = tuple(sync.get_stream(s).operation_id for s in streams)
    before = _stats(server.base_url)
    with _Sampler(server.base_url, tuple(dict.fromkeys(ops))) as sampler:
        doc = _run_child(server, streams, workdir, factor, start_days)
    after = _stats(server.base_url)
    if samples_to is not None:
        samples_to.mkdir(parents=True, exist_ok=True)
        name = "-".join(streams)[:120]
        (samples_to / f"{name}.json").write_text(json.dumps(sampler.samples))
    table = Table(title=title)
    cols = ("stream", "operation", "requests", "records", "seconds", "records/s",
            "ceiling records/s", "steady req/min", "ceiling req/min", "% of ceiling",
            "429s (steady)", "429s (all)", "server p50/p95 ms", "serial budget ms")  # fmt: skip
    for col in cols:
        table.add_column(col, justify="left" if col in ("stream", "operation") else "right")
    for stream, op in zip(streams, ops, strict=True):
        r = doc["streams"][stream]
        op_info = catalog.get(op)
        assert op_info.rate_limit is not None
        steady_limit = scaled_limit(op_info.rate_limit.steady, factor)
        page = op_info.max_page_size
        ceiling_rps = f"{steady_limit * page / 60:,.0f}" if page else "-"
        served = _count(after, op, "requests") - _count(before, op, "requests")
        all_429 = _count(after, op, "throttled") - _count(before, op, "throttled")
        burst_limit = scaled_limit(op_info.rate_limit.burst, factor)
        found = _steady(sampler.samples[op], warmup, steady_limit / burst_limit + 2)
        per_min, steady_429 = (f"{found[0]:.1f}", str(found[1])) if found else ("-", "-")
        if found:
            pct = f"{found[0] / steady_limit:.1%}"
        elif served - all_429 <= 2 * steady_limit:
            # what the first minute's window admits (and one more) is all there is
            pct = "few: no steady state"
        else:
            pct = "too short"
        table.add_row(
            stream,
            op,
            f"{served - all_429:,}",
            f"{r['records']:,}",
            f"{r['seconds']:.1f}",
            f"{r['records_per_second'] or 0:,.0f}",
            ceiling_rps,
            per_min,
            str(steady_limit),
            pct,
            steady_429,
            str(all_429),
            _latency(after, op),
            # a walk that waits for each page has this long a request at the ceiling
            f"{60_000 / steady_limit:,.0f}",
        )
    return table


def _latency(stats: dict[str, dict[str, object]], op: str) -> str:
    """The emulator's own time per request (all of the run's), p50/p95."""
    lat = stats.get(op, {}).get("latency_ms")
    if not isinstance(lat, dict):
        return "-"
    return f"{lat.get('p50', 0):.0f} / {lat.get('p95', 0):.0f}"


def paced(args: argparse.Namespace, workdir: Path) -> Table | None:
    streams = [s for s in PACED_STREAMS if s in _wanted(args.paced_streams)]
    if not streams:
        return None
    serve = ["--profiles", str(args.profiles), "--events", str(args.events)]
    with ServerProcess([*serve, "--rate-limits", str(args.factor)]) as server:
        return _paced_table(
            f"paced sync at --rate-limits {args.factor:g} ({args.profiles:,} profiles, "
            f"{args.events:,} events; streams together, as `kbridge sync` runs them)",
            server,
            streams,
            args.factor,
            workdir,
            args.warmup,
            args.samples,
        )


# -- 1b. paced, the streams of #22 ----------------------------------------------------------


@dataclass(frozen=True)
class PacedRun:
    """Streams synced together against an account shaped for them: a parent listing long
    enough for minutes at its ceiling and a fan-out over many parents cannot share one
    account (every parent costs its children a request), so each gets its run."""

    label: str
    streams: tuple[str, ...]
    #: EmulatorConfig fields beyond the rate-limit factor; ``extra_*`` scale with --scale
    account: dict[str, int]
    factor: float
    #: a first run from this many days back (reports: each day a request), else the default
    start_days: int | None = None


#: sizes for about three minutes at each ceiling (a minute of warm-up, two of steady state)
NEW_PACED_RUNS = (
    PacedRun(
        "catalogue listings and a per-coupon fan-out",
        (
            "catalog_items",
            "catalog_variants",
            "coupon_codes",
            "metric_aggregates_daily",
            "forms",
            "tag_groups",
            "images",
        ),
        # 175 requests/min of 100 records: 60,000 items (and variants) are 600 pages;
        # 37/min: 150 coupons of 100 codes are 150 one-page requests
        {
            "profiles": 20_000,
            "events": 100_000,
            "extra_catalog_items": 60_000,
            "extra_coupons": 150,
            "codes_per_extra_coupon": 100,
        },
        0.05,
    ),
    PacedRun(
        "a per-category fan-out",
        # alone: with 60,000 items, this walk beside the items' and the variants' (the
        # emulator sorts all 60,000 for each of their pages) kept the one emulator process
        # on a loaded machine busier than the 343 ms a request a serial walk has at 175/min
        ("catalog_item_categories",),
        # 650 categories of 92 items are 650 one-page requests at 175/min
        {
            "profiles": 1_000,
            "events": 1_000,
            "extra_catalog_items": 60_000,
            "extra_catalog_categories": 650,
        },
        0.05,
    ),
    PacedRun(
        "long parent listings",
        ("catalog_categories", "coupons", "suppressions"),
        # 60,000 categories: 600 pages at 175/min; 13,000 coupons and ≈ 14,000 suppressed
        # profiles (≈ 4 % of them): 130 and 140 pages at 37/min
        {
            "profiles": 350_000,
            "events": 1_000,
            "extra_catalog_categories": 60_000,
            "extra_coupons": 13_000,
        },
        0.05,
    ),
    PacedRun(
        "the 60 requests/min tier",
        ("custom_object_records",),
        # at 0.05 this tier admits 3 requests a minute, too few to tell 90 % from 100 %;
        # at 0.25, 15 a minute: 6,000 records are 60 pages
        {"profiles": 1_000, "events": 1_000, "extra_custom_object_records": 6_000},
        0.25,
    ),
    PacedRun(
        "the reporting API",
        ("campaign_values_daily", "flow_series_daily"),
        # a values report answers one day a request, at 2 a minute (225 a day) at any
        # factor up to 0.5: Klaviyo's own limits, and ten days are ten requests
        {"profiles": 2_000, "events": 20_000},
        1.0,
        start_days=10,
    ),
)
NEW_STREAMS = tuple(s for run in NEW_PACED_RUNS for s in run.streams)


def _wanted(spec: str) -> list[str]:
    names: list[str] = []
    for name in (n.strip() for n in spec.split(",")):
        if name == "new":
            names += NEW_STREAMS
        elif name:
            sync.get_stream(name)  # an unknown name fails here, with the list
            names.append(name)
    return names


class _ConfiguredServer(ServerProcess):
    """The emulator in its own process from an ``EmulatorConfig`` (knobs the CLI lacks)."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__([])
        self.config = config

    def __enter__(self) -> _ConfiguredServer:
        payload = json.dumps(self.config)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.sync", "--serve", payload],
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
        self.base_url = url_line.rsplit(" ", 1)[1].strip()
        self.api_key = key_line.rsplit(" ", 1)[1].strip()
        return self


def _serve(payload: str) -> None:
    from dataclasses import replace

    from kbridge.emulator.config import EmulatorConfig
    from kbridge.emulator.http.app import create_app
    from kbridge.emulator.server import bind_socket, serve

    config = EmulatorConfig(**json.loads(payload))
    sock = bind_socket("127.0.0.1", 0)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = create_app(replace(config, public_base_url=base))
    print(f"listening on {base}", flush=True)
    print(f"private key: {app.state.emulator.api_key}", flush=True)
    serve(config, "127.0.0.1", 0, sock=sock, app=app)


def paced_new(args: argparse.Namespace, workdir: Path) -> None:
    """Each run's table printed as soon as it is taken."""
    wanted = _wanted(args.paced_streams)
    for run in NEW_PACED_RUNS:
        streams = [s for s in run.streams if s in wanted]
        if not streams:
            continue
        account = {
            k: round(v * args.scale) if k.startswith(("extra_", "profiles")) else v
            for k, v in run.account.items()
        }
        shown = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in account.items())
        if run.start_days is not None:
            shown += f", start date {run.start_days} days back"
        config = {**account, "rate_limit_factor": run.factor}
        with _ConfiguredServer(config) as server:
            table = _paced_table(
                f"paced sync, {run.label}, at --rate-limits {run.factor:g} ({shown}; "
                "streams together, as `kbridge sync` runs them)",
                server,
                streams,
                run.factor,
                workdir,
                args.warmup,
                args.samples,
                run.start_days,
            )
        console.print(table)


# -- 2. unpaced ----------------------------------------------------------------------------


def unpaced(args: argparse.Namespace, workdir: Path) -> tuple[Table, dict[str, dict[str, Any]]]:
    serve = ["--profiles", str(args.profiles), "--events", str(args.events)]
    docs: dict[str, dict[str, Any]] = {}
    with ServerProcess([*serve, "--rate-limits", "off"]) as server:
        # what any sync costs before its first record: open the warehouse and its tables,
        # make the client, read the account (one request), close; the median of three
        startup = statistics.median(
            _run_child(server, ["accounts"], workdir, None)["cpu"] for _ in range(3)
        )
        for stream in ("profiles", "events"):
            docs[stream] = _run_child(server, [stream], workdir, None)
    table = Table(
        title=f"client cost, --rate-limits off ({args.profiles:,} profiles, {args.events:,} "
        "events; each stream alone in a fresh process; CPU and RSS of the sync process only; "
        f"start-up: a one-record sync, {startup:.2f} s)"
    )
    cols = ("stream", "records", "seconds", "records/s", "client CPU s", "µs/record",
            "beyond start-up", "ceiling µs", "peak RSS MB", "ceiling MB")  # fmt: skip
    for col in cols:
        table.add_column(col, justify="left" if col == "stream" else "right")
    for stream, doc in docs.items():
        r = doc["streams"][stream]
        n = r["records"] or float("nan")
        table.add_row(
            stream,
            f"{r['records']:,}",
            f"{r['seconds']:.1f}",
            f"{r['records_per_second'] or 0:,.0f}",
            f"{doc['cpu']:.1f}",
            f"{doc['cpu'] / n * 1e6:.1f}",
            f"{(doc['cpu'] - startup) / n * 1e6:.1f}",
            f"{CPU_CEILING_US[stream]:g}",
            f"{doc['peak_rss_mb']:.0f}",
            f"{RSS_CEILING_MB:g}",
        )
    return table, docs


# -- 3. an existing connector ----------------------------------------------------------------

#: tap-klaviyo hard-codes https://a.klaviyo.com in a module constant and has no base-URL
#: setting; this launcher rewrites that constant so the tap talks to the emulator
_TAP_LAUNCHER = textwrap.dedent(
    """
    import sys
    import tap_klaviyo
    base = sys.argv.pop(1)
    tap_klaviyo.ENDPOINTS = {
        k: v.replace("https://a.klaviyo.com", base) for k, v in tap_klaviyo.ENDPOINTS.items()
    }
    tap_klaviyo.main()
    """
)


def _tap_python() -> Path:
    python = TAP_VENV / "bin" / "python"
    if not python.exists():
        console.print(f"installing {TAP_PACKAGE} into {TAP_VENV} (throwaway venv)…")
        subprocess.run([sys.executable, "-m", "venv", str(TAP_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", TAP_PACKAGE],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    return python


def _tap(base: str, key: str, workdir: Path) -> dict[str, Any]:
    """tap-klaviyo's event streams (the metrics it maps) synced to stdout; its rusage."""
    python = _tap_python()
    launcher = workdir / "run_tap.py"
    launcher.write_text(_TAP_LAUNCHER)
    config = workdir / "tap-config.json"
    config.write_text(json.dumps({"api_key": key, "start_date": "2000-01-01T00:00:00Z"}))
    discovered = subprocess.run(
        [str(python), str(launcher), base, "--config", str(config), "--discover"],
        capture_output=True,
        text=True,
        check=True,
    )
    cat = json.loads(discovered.stdout)
    # its event streams only: the full-table ones (lists, campaigns, suppressed profiles)
    # have no kbridge stream to compare with one to one
    full_table = {"global_exclusions", "lists", "campaigns"}
    cat["streams"] = [s for s in cat["streams"] if s["stream"] not in full_table]
    for s in cat["streams"]:
        for m in s["metadata"]:
            if not m["breadcrumb"]:
                m["metadata"]["selected"] = True
    catalog_file = workdir / "tap-catalog.json"
    catalog_file.write_text(json.dumps(cat))
    started = time.perf_counter()
    proc = subprocess.Popen(
        [str(python), str(launcher), base, "--config", str(config), "--catalog", str(catalog_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    records = 0
    for line in proc.stdout:  # counted here, so the tap's own CPU is only its own
        if line.startswith(b'{"type": "RECORD"'):
            records += 1
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    return {
        "ok": proc.returncode == 0,
        "records": records,
        "streams": len(cat["streams"]),
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
    }


def connector(args: argparse.Namespace, workdir: Path, ours: dict[str, Any] | None) -> Table:
    serve = ["--profiles", str(args.profiles), "--events", str(args.events)]
    with ServerProcess([*serve, "--rate-limits", "off"]) as server:
        theirs = _tap(server.base_url, server.api_key, workdir)
        if ours is None:
            ours = _run_child(server, ["events"], workdir, None)
    table = Table(
        title=f"events synced by kbridge and by {TAP_PACKAGE} (same emulator, --rate-limits off, "
        f"{args.events:,} events)"
    )
    cols = ("connector", "writes to", "records", "seconds", "records/s", "client CPU s",
            "µs/record", "peak RSS MB")  # fmt: skip
    for col in cols:
        table.add_column(col, justify="left" if col in ("connector", "writes to") else "right")
    r = ours["streams"]["events"]
    kb_rps = r["records"] / ours["wall"]
    table.add_row(
        "kbridge sync (events)",
        "DuckDB (committed)",
        f"{r['records']:,}",
        f"{ours['wall']:.1f}",
        f"{kb_rps:,.0f}",
        f"{ours['cpu']:.1f}",
        f"{ours['cpu'] / r['records'] * 1e6:.1f}",
        f"{ours['peak_rss_mb']:.0f}",
    )
    n = theirs["records"]
    tap_rps = n / theirs["wall"] if theirs["wall"] else 0.0
    table.add_row(
        f"{TAP_PACKAGE} ({theirs['streams']} event streams)" + ("" if theirs["ok"] else " FAILED"),
        "Singer JSON on stdout",
        f"{n:,}",
        f"{theirs['wall']:.1f}",
        f"{tap_rps:,.0f}",
        f"{theirs['cpu']:.1f}",
        f"{theirs['cpu'] / n * 1e6:.1f}" if n else "-",
        f"{theirs['peak_rss_mb']:.0f}",
    )
    if n and tap_rps:
        table.caption = (
            f"kbridge/tap: {kb_rps / tap_rps:.1f}× the records per second, "
            f"{(theirs['cpu'] / n) / (ours['cpu'] / r['records']):.1f}× less CPU per record. "
            "The tap reads only the events of the metrics it maps (email and SMS engagement) "
            "and has no base-URL setting (its endpoint constant is rewritten to the emulator)."
        )
    return table


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        print(json.dumps(_child(*json.loads(argv[1]))))
        return
    if argv[:1] == ["--serve"]:
        _serve(argv[1])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--profiles", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument(
        "--factor", type=float, default=0.05, help="emulator rate limits × this (1 = spec)"
    )
    parser.add_argument(
        "--paced-streams",
        default=",".join(PACED_STREAMS),
        help="comma-separated streams to sync paced; 'new': those #22 added, each in a run "
        "whose account suits it",
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="× the accounts of the new streams' runs (profiles and extra records)",
    )
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before steady state")
    parser.add_argument(
        "--samples", type=Path, default=None, help="write each paced run's samples here (JSON)"
    )
    parser.add_argument("--skip", default="", help="comma-separated: paced, off, tap")
    args = parser.parse_args(argv)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    with tempfile.TemporaryDirectory(prefix="kbridge-bench-sync-") as tmp:
        workdir = Path(tmp)
        ours = None
        if "off" not in skip:
            table, docs = unpaced(args, workdir)
            console.print(table)
            ours = docs["events"]
        if "tap" not in skip:
            try:
                console.print(connector(args, workdir, ours))
            except (subprocess.CalledProcessError, OSError, httpx.HTTPError) as exc:
                console.print(f"tap-klaviyo could not be run: {exc}")
        if "paced" not in skip:
            core = paced(args, workdir)
            if core is not None:
                console.print(core)
            paced_new(args, workdir)


if __name__ == "__main__":
    main()
