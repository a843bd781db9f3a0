"""The emulator's CPU per imported profile: bulk import jobs run in-process.

``--jobs`` jobs of ``--rows`` new profiles each (the rows ``kbridge push profiles``
sends: email, first name, two properties) go through what the served emulator does
for them, without HTTP: the body decoded from its JSON bytes and checked, the job
accepted (``bulk_import_profiles``), then run (``run_due``). A second pass imports
the same rows again, so every row updates an existing profile. The figure is CPU
seconds per profile, request and processing apart, beside the 10 µs ceiling.

Usage: python -m benchmarks.emulator_import [--jobs 10] [--rows 10000] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from dataclasses import fields, replace
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from kbridge import catalog
from kbridge.core.clock import ManualClock
from kbridge.emulator.backend import EmulatorBackend
from kbridge.emulator.backend.call import Call
from kbridge.emulator.config import EmulatorConfig
from kbridge.emulator.http.body import check_document, decode_body
from kbridge.emulator.query import Query
from kbridge.emulator.simclock import SimClock

CEILING_US = 10.0


def bodies(jobs: int, rows: int) -> list[bytes]:
    out = []
    for j in range(jobs):
        data = [
            {
                "type": "profile",
                "attributes": {
                    "first_name": f"P{i}",
                    "properties": {"churn_risk": (i % 97) / 97.0, "segment": "Loyal"},
                    "email": f"p{i}@example.com",
                },
            }
            for i in range(j * rows, (j + 1) * rows)
        ]
        doc: dict[str, Any] = {
            "data": {"type": "profile-bulk-import-job", "attributes": {"profiles": {"data": data}}}
        }
        out.append(orjson.dumps(doc))
    return out


def run(raw: list[bytes], backend: EmulatorBackend, clock: SimClock) -> tuple[float, float]:
    """CPU seconds of (accepting, processing) every job in ``raw``."""
    op = catalog.get("bulk_import_profiles")
    call = Call(operation=op, path_params={}, query=Query())
    # the request's length, as http/ gives it (absent before the emulator knew it)
    sized = "body_bytes" in {f.name for f in fields(Call)}
    accept = process = 0.0
    for body in raw:
        t0 = time.process_time()
        doc = decode_body(op, body, content_type="application/vnd.api+json", content_encoding="")
        check_document(op, doc, {})
        extra = {"body_bytes": len(body)} if sized else {}
        backend.dispatch(replace(call, body=doc, **extra))
        t1 = time.process_time()
        clock.advance(1)
        backend.run_due()
        t2 = time.process_time()
        accept += t1 - t0
        process += t2 - t1
    return accept, process


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--profile", action="store_true", help="print cProfile's top entries")
    args = parser.parse_args(argv)
    clock = SimClock(ManualClock())
    backend = EmulatorBackend(EmulatorConfig(seed=7, profiles=0, events=0), clock)
    raw = bodies(args.jobs, args.rows)
    n = args.jobs * args.rows
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    new = run(raw, backend, clock)
    again = run(raw, backend, clock)
    if profiler is not None:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    table = Table(title=f"bulk import in-process: {args.jobs} jobs × {args.rows:,} profiles")
    for col in ("pass", "accept µs/profile", "process µs/profile", "total", "ceiling"):
        table.add_column(col, justify="right")
    for name, (a, p) in (("new profiles", new), ("the same again (updates)", again)):
        total = (a + p) / n * 1e6
        table.add_row(
            name, f"{a / n * 1e6:.2f}", f"{p / n * 1e6:.2f}", f"{total:.2f}", f"{CEILING_US:.0f}"
        )
    Console().print(table)


if __name__ == "__main__":
    main()
