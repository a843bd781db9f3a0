"""``kbridge analytics rfm --push`` and ``analytics churn --push`` through the push path.

An emulator account is synced into DuckDB; the analyses' pushes then go through
profile bulk import jobs (changed rows only), and what the emulator serves — list
members, profile properties, read with a plain HTTP client — must equal the
warehouse's answers. A rerun with nothing changed submits no job.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kbridge import sync
from kbridge.analytics import churn, rfm
from kbridge.api import AsyncClient
from kbridge.core import ManualClock, loads
from kbridge.emulator.config import EmulatorConfig
from kbridge.emulator.server import EmulatorServer
from kbridge.testing.plugin import http_client_for
from kbridge.warehouse import open_warehouse
from tests.e2e.test_cli import run

pytestmark = pytest.mark.integration

CONFIG = EmulatorConfig(seed=11, profiles=150, events=4000, rate_limit_factor=None)
IMPORT = "profile-bulk-import-job"
NOTHING_SENT = {"sent": 0, "jobs": 0, "errors": 0}


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(CONFIG) as s:
        yield s


@pytest.fixture(scope="module")
def http(server: EmulatorServer) -> Iterator[httpx.Client]:
    with http_client_for(server) as client:
        yield client


@pytest.fixture(scope="module")
def warehouse_url(server: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"duckdb:///{tmp_path_factory.mktemp('analytics-push') / 'wh.duckdb'}"

    async def go() -> None:
        async with AsyncClient(
            server.api_key, base_url=server.base_url, clock=ManualClock()
        ) as client:
            result = await sync.run(client, url, streams=["profiles", "metrics", "events"])
            assert result.ok, result.to_dict()

    asyncio.run(go())
    return url


def api_all(http: httpx.Client, path: str, params: dict[str, Any] | None = None) -> list[Any]:
    out: list[Any] = []
    response = http.get(path, params=params or {})
    while True:
        response.raise_for_status()
        body = response.json()
        out.extend(body["data"])
        nxt = body.get("links", {}).get("next")
        if not nxt:
            return out
        response = http.get(nxt)


def import_jobs(server: EmulatorServer) -> int:
    return sum(1 for j in server.state.backend.store.jobs.values() if j.kind == IMPORT)


def creds(server: EmulatorServer) -> tuple[str, ...]:
    return ("--api-key", server.api_key, "--base-url", server.base_url, "--output", "json")


def counts(stdout: str) -> dict[str, int]:
    summary = loads(stdout)["summary"]
    push = summary["push"]
    assert set(push) == {"rows", "sent", "unchanged", "skipped_no_consent", "errors", "jobs"}
    return dict(push)


def test_rfm_push_adds_the_segment_through_an_import_job_and_resends_nothing(
    warehouse_url: str, server: EmulatorServer, http: httpx.Client
) -> None:
    wh = open_warehouse(warehouse_url)
    try:
        account = str(wh.query("SELECT DISTINCT account_id FROM profiles")[0][0])
        result = rfm(wh, account)
    finally:
        wh.close()
    segment = max(result.segment_names(), key=lambda s: len(result.members(s)))
    expected = set(result.members(segment))
    assert len(expected) >= 5
    args = ("analytics", "rfm", "--from", warehouse_url, "--push", segment,
            "--list-name", "Pushed RFM", *creds(server))  # fmt: skip
    jobs_before = import_jobs(server)

    first = run(*args)
    assert first.returncode == 0, first.stderr
    got = counts(first.stdout)
    assert got == {"rows": len(expected), "sent": len(expected), "unchanged": 0,
                   "skipped_no_consent": 0, "errors": 0, "jobs": 1}  # fmt: skip
    assert import_jobs(server) == jobs_before + 1
    list_id = loads(first.stdout)["summary"]["list_id"]
    assert {p["id"] for p in api_all(http, f"/api/lists/{list_id}/profiles")} == expected

    again = run(*args)
    assert again.returncode == 0, again.stderr
    got = counts(again.stdout)
    assert {k: got[k] for k in NOTHING_SENT} == NOTHING_SENT
    assert got["unchanged"] == len(expected)
    assert import_jobs(server) == jobs_before + 1
    assert loads(again.stdout)["summary"]["pushed_profiles"] == len(expected)


@pytest.mark.parametrize("by", ["email", "id"])
def test_churn_push_sets_churn_risk_on_every_scored_profile_and_resends_nothing(
    by: str, warehouse_url: str, server: EmulatorServer, http: httpx.Client
) -> None:
    wh = open_warehouse(warehouse_url)
    try:
        account = str(wh.query("SELECT DISTINCT account_id FROM profiles")[0][0])
        scores = {
            str(r["profile_id"]): r["churn_probability"]
            for r in churn(wh, account).profiles.records()
        }
    finally:
        wh.close()
    assert len(scores) >= 100
    args = ("analytics", "churn", "--from", warehouse_url, "--push", "--push-by", by,
            *creds(server))  # fmt: skip

    first = run(*args)
    assert first.returncode == 0, first.stderr
    got = counts(first.stdout)
    assert (got["rows"], got["sent"], got["errors"]) == (len(scores), len(scores), 0)
    assert loads(first.stdout)["summary"]["pushed_property"] == "churn_risk"
    on_profiles = {
        p["id"]: (p["attributes"].get("properties") or {}).get("churn_risk")
        for p in api_all(http, "/api/profiles", {"page[size]": 100})
    }
    assert {pid: on_profiles[pid] for pid in scores} == scores

    jobs = import_jobs(server)
    again = run(*args)
    assert again.returncode == 0, again.stderr
    got = counts(again.stdout)
    assert {k: got[k] for k in NOTHING_SENT} == NOTHING_SENT
    assert got["unchanged"] == len(scores)
    assert import_jobs(server) == jobs


def test_a_push_that_cannot_run_is_one_line(warehouse_url: str, server: EmulatorServer) -> None:
    bad_key = run("analytics", "churn", "--from", warehouse_url, "--push",
                  "--api-key", "pk_wrong", "--base-url", server.base_url)  # fmt: skip
    assert bad_key.returncode == 1
    assert bad_key.stderr.startswith("error: ")
    assert "pk_wrong" not in bad_key.stderr
    assert "Traceback" not in bad_key.stderr
