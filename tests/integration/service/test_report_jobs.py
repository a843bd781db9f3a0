"""The report job: the analyses of a connection's synced warehouse as the offline HTML file."""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from kbridge.connections import generate_master_key
from kbridge.emulator.server import EmulatorServer
from kbridge.service.appdb import AppDatabase
from kbridge.service.db import database_url
from kbridge.service.jobs import EXECUTORS, WorkerSettings
from kbridge.service.worker import InProcessService, start_in_process
from kbridge.web.schemas import JOB_KINDS

from .jobhelp import connect, wait_for

pytestmark = pytest.mark.integration

KEY = generate_master_key()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[AppDatabase]:
    appdb = AppDatabase.open(database_url(tmp_path))
    try:
        yield appdb
    finally:
        appdb.close()


@pytest.fixture
def service(db: AppDatabase, tmp_path: Path) -> Iterator[InProcessService]:
    settings = WorkerSettings(data_dir=tmp_path, master_key=KEY, lease=timedelta(seconds=6),
                              busy_retry=timedelta(milliseconds=100))  # fmt: skip
    handle = start_in_process(db, settings, tick_every=timedelta(milliseconds=200))
    try:
        yield handle
    finally:
        handle.stop()


def test_every_kind_the_api_accepts_has_a_job_to_run_it() -> None:
    assert set(JOB_KINDS) == set(EXECUTORS)


def test_a_report_follows_a_sync_and_a_report_before_any_sync_says_what_to_do(
    db: AppDatabase,
    service: InProcessService,
    emulator_factory: Callable[..., EmulatorServer],
    tmp_path: Path,
) -> None:
    server = emulator_factory()
    workspace = db.create_workspace("acme")
    connection = connect(db, workspace.id, server, KEY)

    early = db.enqueue_job(workspace.id, "report", connection_id=connection)
    service.queue(early.id)
    refused = wait_for(db, early.id)
    assert refused.state == "failed"
    assert refused.attempts == 1  # it will not heal by itself: no retries
    assert refused.last_error is not None
    assert "run a sync job first" in refused.last_error

    synced = db.enqueue_job(workspace.id, "sync", {"streams": ["profiles", "events", "metrics"]},
                            connection_id=connection)  # fmt: skip
    service.queue(synced.id)
    assert wait_for(db, synced.id).state == "succeeded"
    job = db.enqueue_job(workspace.id, "report", connection_id=connection)
    service.queue(job.id)
    done = wait_for(db, job.id)

    assert done.state == "succeeded", done.last_error
    assert done.result is not None
    path = Path(done.result["path"])
    assert path == tmp_path / "reports" / workspace.id / "shop.html"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    html = path.read_text(encoding="utf-8")
    assert done.result["bytes"] == len(html.encode("utf-8"))
    assert html.lstrip().lower().startswith("<!doctype html")
    assert done.result["account_id"] in html
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
