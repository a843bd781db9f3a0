"""Two `kbridge serve` processes on one PostgreSQL app database and one Redis broker.

Both fire schedules, each runs one worker thread (``--workers 1``): every due
time of a cron schedule must become exactly one job, whichever process sees
it first (issue #20, "Faults": two ``kbridge serve`` processes). The SQLite
variant is in ``test_serve.py``.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from kbridge.emulator import EmulatorConfig, EmulatorServer
from kbridge.service.appdb import AppDatabase

from .test_serve import connect, kbridge, serving

pytestmark = pytest.mark.e2e


@pytest.fixture
def emulator_off() -> Iterator[EmulatorServer]:
    config = EmulatorConfig(seed=43, profiles=20, events=50, rate_limit_factor=None)
    with EmulatorServer(config) as server:
        yield server


def test_each_due_time_of_a_cron_schedule_fires_once_with_two_serve_processes_on_postgresql(
    emulator_off: EmulatorServer,
    postgres_url: str,
    redis_url: str,
    env: dict[str, str],
) -> None:
    service = ("--database", postgres_url, "--broker", redis_url, "--workers", "1")
    added = kbridge(env, "workspaces", "add", "acme", "--database", postgres_url)
    assert added.returncode == 0, added.stderr
    made = kbridge(env, "tokens", "add", "--workspace", "acme", "--database", postgres_url)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    headers = {"Authorization": f"Bearer {token}"}
    with serving(env, *service) as url, httpx.Client(base_url=url, headers=headers,
                                                     timeout=60.0) as api:  # fmt: skip
        shop = connect(api, "shop", emulator_off.api_key, emulator_off.base_url)

    db = AppDatabase.open(postgres_url)
    try:
        workspace = db.workspace("acme")
        # every minute, and everything was down for a day: 1440 due times passed
        missed = datetime.now(UTC) - timedelta(days=1)
        schedule = db.create_schedule(workspace.id, shop["id"], "sync", cron="* * * * *",
                                      params={"streams": ["lists"]}, next_due=missed)  # fmt: skip

        with serving(env, *service), serving(env, *service):
            # the missed stretch, then the first minute boundary after the start: both
            # processes tick every 5 s, so each due time is raced for by both
            deadline = time.monotonic() + 240
            while True:
                fires = db.schedule_fires(schedule.id)
                jobs = db.jobs(workspace.id)
                if len(fires) >= 2 and all(j.state == "succeeded" for j in jobs):
                    break
                assert not any(j.state == "failed" for j in jobs), [j.last_error for j in jobs]
                assert time.monotonic() < deadline, (fires, jobs)
                time.sleep(0.5)
        # both processes stopped: nothing more can fire
        fires = db.schedule_fires(schedule.id)
        jobs = db.jobs(workspace.id)
    finally:
        db.close()

    due_times = [due for due, _ in fires]
    # one job per due time, nothing fired twice by the second process
    assert sorted(j.id for j in jobs) == sorted(job_id for _, job_id in fires if job_id)
    assert len(jobs) == len(fires)
    assert all(j.state == "succeeded" for j in jobs), [j.last_error for j in jobs]
    # the day missed while down fired once (its latest due time), not 1440 times; then
    # every minute once, none skipped
    assert due_times[0] > missed + timedelta(hours=23), fires
    assert all(b - a == timedelta(minutes=1) for a, b in itertools.pairwise(due_times)), fires


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KBRIDGE_", "KLAVIYO_"))}
    return {**clean, "NO_COLOR": "1", "COLUMNS": "200", "KBRIDGE_HOME": str(tmp_path / "home")}
