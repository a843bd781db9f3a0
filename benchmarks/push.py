"""Profile push (``kbridge.push.push_profiles``) from DuckDB to the emulator at Klaviyo's limits.

The emulator runs as ``kbridge emulator serve --rate-limits spec`` in its own
process (so the client's CPU and memory are its own); ``--import-rate`` sets how
many profiles a bulk import job processes per second there. ``--profiles`` rows
(email, first name, two properties) are made in a DuckDB file, then pushed:

1. the first push: wall time beside the issue's ideal × 1.3, the submission the
   bulk-import tier allows (jobs of 10,000 at 10/s burst and 150/min steady) plus
   the emulator's processing (the CPU it spent during the push: one process, it
   cannot process faster), and beside the tier alone (submission and the last
   job's ``--import-rate`` processing, as if the emulator cost nothing); client CPU
   per profile (ceiling 3 µs); peak RSS of the client (ceiling 300 MB). Each push
   runs in a process of its own (``benchmarks._push_child``) doing what
   ``kbridge push profiles --table scores`` does, so the figures are the push's and
   not the benchmark's own (its emulator controls, its table);
   429s (ceiling 0);
2. a rerun with ``--changed`` of the rows changed: the share sent (ceiling
   1.1 × the share changed).

Usage: python -m benchmarks.push [--profiles 1000000] [--changed 0.01] [--import-rate 200000]
Run it small on a shared machine: ``--profiles 20000``.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from dataclasses import fields
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks.emulator import ServerProcess, _count, _stats
from kbridge.push import PushSummary
from kbridge.warehouse import Warehouse, open_warehouse

JOB = 10_000
BURST, STEADY = 10, 150  # bulk import tier M, per second and per minute


def ideal_seconds(profiles: int, import_rate: float | None) -> float:
    """Submission at the tier's pace, then the last job's processing."""
    jobs = math.ceil(profiles / JOB)
    burst_jobs = min(jobs, STEADY)
    submit = (burst_jobs - 1) / BURST if jobs <= STEADY else 60.0 * (jobs // STEADY)
    last = min(JOB, profiles - (jobs - 1) * JOB)
    return max(submit, 0.0) + (last / import_rate if import_rate else 0.0)


def make_rows(wh: Warehouse, profiles: int) -> None:
    wh.query(
        "CREATE OR REPLACE TABLE scores AS SELECT 'p' || i || '@example.com' AS email, "
        "'P' || i AS first_name, (i % 97) / 97.0 AS churn_risk, "
        "CASE WHEN i % 5 = 0 THEN 'At risk' ELSE 'Loyal' END AS segment FROM range(?) t(i)",
        [profiles],
    )


def push_once(
    base_url: str, api_key: str, path: Path
) -> tuple[PushSummary, float, float, float, float]:
    """One push of the ``scores`` table in a process of its own (``benchmarks._push_child``):
    the counts, wall seconds, client CPU seconds, the seconds until the last job was
    submitted and the process's peak RSS (MiB)."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks._push_child", base_url, api_key, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"the push failed:\n{done.stderr}")
    got = json.loads(done.stdout.strip().splitlines()[-1])
    counts = {f.name: int(got[f.name]) for f in fields(PushSummary)}
    return (
        PushSummary(**counts),
        float(got["wall"]),
        float(got["cpu"]),
        float(got["submitted"]),
        float(got["peak_rss_mib"]),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--import-rate", type=float, default=200_000.0)
    args = parser.parse_args(argv)
    serve = ["--profiles", "0", "--events", "0", "--rate-limits", "spec"]
    if args.import_rate:
        serve += ["--import-rate", str(args.import_rate)]
    console = Console(width=120)
    with tempfile.TemporaryDirectory() as tmp, ServerProcess(serve) as server:
        path = Path(tmp) / "push.duckdb"
        # the pushes run in processes of their own, which open the file when this one
        # has closed it (DuckDB lets one process write a database)
        wh = open_warehouse(f"duckdb:///{path}")
        try:
            make_rows(wh, args.profiles)
        finally:
            wh.close()
        before_cpu = server.cpu_seconds()
        first, wall, cpu, submit, peak_first = push_once(server.base_url, server.api_key, path)
        server_cpu = server.cpu_seconds() - before_cpu
        throttled = _count(_stats(server.base_url), "bulk_import_profiles", "throttled")
        step = max(1, round(1 / args.changed)) if args.changed > 0 else 0
        wh = open_warehouse(f"duckdb:///{path}")
        try:
            if step:
                wh.query("UPDATE scores SET churn_risk = churn_risk + 1 WHERE hash(email) % ? = 0",
                         [step])  # fmt: skip
            changed = int(wh.query("SELECT count(*) FROM scores WHERE churn_risk >= 1")[0][0])
        finally:
            wh.close()
        second, _, _, _, peak_second = push_once(server.base_url, server.api_key, path)
        throttled_all = sum(
            _count(_stats(server.base_url), op, "throttled")
            for op in (
                "bulk_import_profiles",
                "get_bulk_import_profiles_jobs",
                "get_bulk_import_profiles_job",
                "get_accounts",
            )
        )
        server_rss = server.peak_rss_mib()
    peak = max(peak_first, peak_second)
    ideal = ideal_seconds(args.profiles, args.import_rate)
    n = args.profiles
    table = Table(title=f"push profiles: {n:,} rows from DuckDB, emulator at spec rate limits")
    for col in ("figure", "value", "ceiling", "ok"):
        table.add_column(col, justify="right" if col != "figure" else "left")

    def row(name: str, value: str, ceiling: str, ok: bool) -> None:
        table.add_row(name, value, ceiling, "yes" if ok else "NO")

    row("jobs", f"{first.jobs}", f"{math.ceil(n / JOB)}", first.jobs <= math.ceil(n / JOB))
    sub_ideal = ideal_seconds(n, None)
    # the ideal: the tier's submission plus the emulator's processing, here the
    # CPU the emulator spent during the push (one process: it cannot go faster)
    processed = sub_ideal + server_cpu
    row("wall time", f"{wall:.1f} s",
        f"{1.3 * processed + 1:.1f} s (1.3 × ({sub_ideal:.1f} s + {server_cpu:.1f} s) + 1 s)",
        wall <= 1.3 * processed + 1)  # fmt: skip
    row("  against the tier alone", f"{wall:.1f} s",
        f"{1.3 * ideal + 1:.1f} s (1.3 × {ideal:.1f} s + 1 s)",
        wall <= 1.3 * ideal + 1)  # fmt: skip
    row("  of which submission", f"{submit:.1f} s", f"{1.3 * sub_ideal + 1:.1f} s",
        submit <= 1.3 * sub_ideal + 1)  # fmt: skip
    row("  emulator CPU (its processing)", f"{server_cpu:.1f} s", "-", True)
    per = cpu / n * 1e6
    row("client CPU per profile", f"{per:.2f} µs", "3 µs", per <= 3)
    row("client peak RSS (its own process)", f"{peak:.0f} MB", "300 MB", peak <= 300)
    row("429s (first push)", f"{throttled}", "0", throttled == 0)
    row("429s (both pushes)", f"{throttled_all}", "0", throttled_all == 0)
    share = second.sent / n if n else 0.0
    row(f"rerun: sent after {changed:,} changed", f"{second.sent:,} ({share:.2%})",
        f"{1.1 * changed / n:.2%}", second.sent <= 1.1 * changed)  # fmt: skip
    console.print(table)
    console.print(
        f"first push: {first.as_dict()}; rerun: {second.as_dict()}; "
        f"emulator peak RSS {server_rss:.0f} MiB"
    )


if __name__ == "__main__":
    main()
