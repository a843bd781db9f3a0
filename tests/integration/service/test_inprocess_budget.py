"""Without Redis, the jobs one process runs at once for one Klaviyo account share its budget.

`kbridge serve --workers 2` on embedded defaults runs two jobs at a time in threads. Two
connections of one account (two keys, say an operator's and a campaign tool's) syncing
together must stay under that account's windows, as workers sharing Redis do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from kbridge.connections import generate_master_key
from kbridge.emulator.server import EmulatorServer
from kbridge.service.appdb import AppDatabase
from kbridge.service.db import database_url
from kbridge.service.jobs import WorkerSettings
from kbridge.service.worker import start_in_process

from .jobhelp import account_id, connect, wait_for

pytestmark = pytest.mark.integration

KEY = generate_master_key()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[AppDatabase]:
    appdb = AppDatabase.open(database_url(tmp_path))
    try:
        yield appdb
    finally:
        appdb.close()


def test_two_jobs_for_one_account_in_one_process_share_its_windows(
    db: AppDatabase, tmp_path: Path, emulator_factory: Callable[..., EmulatorServer]
) -> None:
    # GET /api/profiles at 15/s, 150/min: 20 pages each, two syncs at once would send 30 in
    # their first second on budgets of their own
    server = emulator_factory(
        profiles=2000, events=20, rate_limit_factor=0.2, rate_limit_algorithm="fixed-window"
    )
    other_key = httpx.post(
        f"{server.base_url}/_emulator/keys", json={"scopes": ["accounts:read", "profiles:read"]}
    ).json()["key"]
    account = account_id(server)
    workspace = db.create_workspace("acme")
    first = connect(db, workspace.id, server, KEY, name="ops", rate_limits="0.2", account=account)
    second = connect(
        db,
        workspace.id,
        server,
        KEY,
        name="tool",
        api_key=other_key,
        rate_limits="0.2",
        account=account,
    )
    server.state.stats.clear()
    settings = WorkerSettings(data_dir=tmp_path, master_key=KEY, lease=timedelta(seconds=30))
    service = start_in_process(db, settings, threads=2, tick_every=timedelta(milliseconds=200))
    try:
        jobs = [
            db.enqueue_job(workspace.id, "sync", {"streams": ["profiles"]}, connection_id=c)
            for c in (first, second)
        ]
        for job in jobs:
            service.queue(job.id)
        for job in jobs:
            assert wait_for(db, job.id, patience=180).state == "succeeded"
    finally:
        service.stop()
    served = server.state.stats.snapshot()["operations"]["get_profiles"]
    assert served["requests"] >= 40  # both synced every page, together
    assert served.get("throttled", 0) == 0
