"""``kbridge metrics aggregate``: a metric's daily/weekly/… figures as a table, JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

import httpx
import pytest

from kbridge.emulator import EmulatorConfig, EmulatorServer

from .test_cli_actions import run

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    config = EmulatorConfig(seed=41, profiles=150, events=3000, rate_limit_factor=None)
    with EmulatorServer(config) as running:
        yield running


def _opened(server: EmulatorServer) -> str:
    headers = {"Authorization": f"Klaviyo-API-Key {server.api_key}", "revision": "2026-07-15"}
    metrics = httpx.get(f"{server.base_url}/api/metrics", headers=headers).json()["data"]
    return str(next(m["id"] for m in metrics if m["attributes"]["name"] == "Opened Email"))


ARGS = (
    "--measurements", "count", "--measurements", "unique", "--interval", "month",
    "--start", "2025-06-01T00:00:00+00:00", "--end", "2026-12-01T00:00:00+00:00",
    "--by", "$message",
)  # fmt: skip


def test_json_csv_and_table_carry_the_same_rows(server: EmulatorServer) -> None:
    metric = _opened(server)
    as_json = run(server, "metrics", "aggregate", metric, *ARGS, "--output", "json")
    assert as_json.returncode == 0, as_json.stderr
    rows = json.loads(as_json.stdout)
    assert rows, "no opens in 18 months"
    assert set(rows[0]["attributes"]) == {"date", "dimensions", "count", "unique"}
    total = sum(r["attributes"]["count"] for r in rows)

    as_csv = run(server, "metrics", "aggregate", metric, *ARGS, "--output", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    table = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert list(table[0]) == ["date", "dimensions", "count", "unique"]
    assert sum(int(r["count"]) for r in table) == total
    assert len(table) == len(rows)

    as_table = run(server, "metrics", "aggregate", metric, *ARGS, "--output", "table")
    assert as_table.returncode == 0, as_table.stderr
    assert "count" in as_table.stdout
    assert "unique" in as_table.stdout


def test_a_bad_interval_is_one_clear_line(server: EmulatorServer) -> None:
    metric = _opened(server)
    bad = run(
        server, "metrics", "aggregate", metric, "--measurements", "count", "--interval", "year",
        "--start", "2026-01-01T00:00:00+00:00", "--end", "2026-02-01T00:00:00+00:00",
    )  # fmt: skip
    assert bad.returncode != 0
    assert "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
