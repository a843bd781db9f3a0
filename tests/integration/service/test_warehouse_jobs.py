"""Jobs over a connection's synced warehouse: the offline HTML report, and an RFM segment
pushed to a Klaviyo list."""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from kbridge.analytics import rfm
from kbridge.connections import generate_master_key
from kbridge.emulator.server import EmulatorServer
from kbridge.service.appdb import AppDatabase
from kbridge.service.db import database_url
from kbridge.service.jobs import EXECUTORS, WorkerSettings, default_warehouse_url
from kbridge.service.worker import InProcessService, start_in_process
from kbridge.testing.plugin import http_client_for
from kbridge.warehouse import open_warehouse
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


def test_a_segment_push_job_puts_the_segment_on_a_list_and_a_rerun_sends_nothing(
    db: AppDatabase,
    service: InProcessService,
    emulator_factory: Callable[..., EmulatorServer],
    tmp_path: Path,
) -> None:
    server = emulator_factory()
    workspace = db.create_workspace("acme")
    connection = connect(db, workspace.id, server, KEY)
    synced = db.enqueue_job(workspace.id, "sync", {"streams": ["profiles", "events", "metrics"]},
                            connection_id=connection)  # fmt: skip
    service.queue(synced.id)
    assert wait_for(db, synced.id).state == "succeeded"
    url = default_warehouse_url(tmp_path, workspace.id, "shop")
    warehouse = open_warehouse(url)
    try:
        account = str(warehouse.query("SELECT DISTINCT account_id FROM profiles")[0][0])
        found = rfm(warehouse, account)
    finally:
        warehouse.close()
    name, emails = max(
        ((n, {r["email"] for r in found.profiles.records() if r["segment"] == n})
         for n in found.segment_names()),
        key=lambda pair: len(pair[1]),
    )  # fmt: skip
    assert emails

    def push() -> dict[str, Any]:
        job = db.enqueue_job(workspace.id, "segment_push", {"segment": name.upper()},
                             connection_id=connection)  # fmt: skip
        service.queue(job.id)
        done = wait_for(db, job.id)
        assert done.state == "succeeded", done.last_error
        assert done.result is not None
        return done.result

    first = push()
    assert first["segment"] == name
    assert first["list_name"] == f"RFM: {name}"
    assert first["push"]["sent"] == len(emails)
    with http_client_for(server) as http:
        members = http.get(f"/api/lists/{first['list_id']}/profiles",
                           params={"page[size]": "100"}).json()["data"]  # fmt: skip
    assert {m["attributes"]["email"] for m in members} == emails
    again = push()
    assert again["list_id"] == first["list_id"]
    assert again["push"]["sent"] == 0
    assert again["push"]["unchanged"] == len(emails)

    wrong = db.enqueue_job(workspace.id, "segment_push", {"segment": "Nobody"},
                           connection_id=connection)  # fmt: skip
    service.queue(wrong.id)
    refused = wait_for(db, wrong.id)
    assert refused.state == "failed"
    assert refused.attempts == 1
    assert "no RFM segment 'Nobody'" in (refused.last_error or "")
