"""One profile push of a DuckDB file's ``scores`` table, in a process of its own.

``benchmarks.push`` runs it as ``python -m benchmarks._push_child BASE_URL API_KEY PATH``
so that the client's CPU and peak RSS are those of a process doing what
``kbridge push profiles --table scores`` does, and nothing of the benchmark's own (the
emulator's controls, rich, making the rows). It prints one JSON object: the push's
counts, ``wall`` and ``submitted`` (seconds until the last job was accepted), ``cpu``
(seconds, from the source read to the push's end, as before) and ``peak_rss_mib`` (the
whole process's).
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time

from kbridge.api import AsyncClient, ClientConfig, LimiterConfig
from kbridge.push import PushSummary, push_profiles, read_source
from kbridge.warehouse import open_warehouse

PROPERTIES = ["first_name", "churn_risk", "segment"]


def main(argv: list[str]) -> None:
    base_url, api_key, path = argv
    wh = open_warehouse(f"duckdb:///{path}")
    try:
        rows = read_source(wh, table="scores")
        before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        submitted = [0.0]

        def on_job(job_id: str | None, n: int) -> None:
            submitted[0] = time.perf_counter() - started

        async def run() -> PushSummary:
            config = ClientConfig(limiter=LimiterConfig(limit_factor=1.0))
            async with AsyncClient(api_key, base_url=base_url, config=config) as client:
                return await push_profiles(
                    client, rows, warehouse=wh, properties=PROPERTIES, on_job=on_job
                )

        summary = asyncio.run(run())
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        wh.close()
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {
        **summary.as_dict(),
        "wall": wall,
        "submitted": submitted[0],
        "cpu": cpu,
        "peak_rss_mib": peak,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
