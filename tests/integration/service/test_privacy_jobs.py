"""Privacy jobs on the in-process worker: a deletion waits for a running sync, comes back to
confirm instead of holding a worker, and purges the warehouse; an access job reports."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from kbridge.connections import ConnectionStoreError, generate_master_key
from kbridge.core import SystemClock
from kbridge.emulator.server import EmulatorServer
from kbridge.service.appdb import AppDatabase
from kbridge.service.db import database_url
from kbridge.service.jobs import AppPrivacyLog, WorkerSettings, default_warehouse_url
from kbridge.service.sealing import SEALED_REPORTS, open_sealed, seal_subjects
from kbridge.service.worker import InProcessService, start_in_process
from kbridge.testing.plugin import http_client_for

from .jobhelp import connect, emulator_ids, wait_for, warehouse_ids

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
    settings = WorkerSettings(
        data_dir=tmp_path,
        master_key=KEY,
        lease=timedelta(seconds=6),
        retry_backoff=timedelta(milliseconds=100),
        busy_retry=timedelta(milliseconds=100),
        confirm_within=timedelta(milliseconds=300),
        confirm_every=timedelta(milliseconds=200),
    )
    handle = start_in_process(db, settings, threads=2, tick_every=timedelta(milliseconds=200))
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def server(emulator_factory: Callable[..., EmulatorServer]) -> EmulatorServer:
    # its own account: these tests delete profiles
    return emulator_factory()


def _first_profile(server: EmulatorServer) -> tuple[str, str]:
    with http_client_for(server) as http:
        first = http.get("/api/profiles").json()["data"][0]
    return first["id"], first["attributes"]["email"]


def test_a_deletion_waits_for_the_sync_then_confirms_later_and_purges_the_warehouse(
    db: AppDatabase, service: InProcessService, server: EmulatorServer, tmp_path: Path
) -> None:
    workspace = db.create_workspace("acme")
    connection = connect(db, workspace.id, server, KEY)
    synced = db.enqueue_job(
        workspace.id, "sync", {"streams": ["profiles"]}, connection_id=connection
    )
    service.queue(synced.id)
    assert wait_for(db, synced.id).state == "succeeded"
    profile_id, email = _first_profile(server)
    url = default_warehouse_url(tmp_path, workspace.id, "shop")
    assert profile_id in warehouse_ids(url)

    # a sync of the same account is running (another worker holds it)
    running = db.enqueue_job(
        workspace.id, "sync", {"streams": ["profiles"]}, connection_id=connection
    )
    assert db.claim_job("other-worker", job_id=running.id) is not None
    deletion = db.enqueue_job(
        workspace.id,
        "privacy_delete",
        seal_subjects(KEY, workspace.id, {"subjects": [email]}),
        connection_id=connection,
    )
    service.queue(deletion.id)
    wait_for(
        db,
        deletion.id,
        until=lambda j: any(
            e.event == "postponed" for e in db.job_events(workspace.id, deletion.id)
        ),
    )
    assert db.job(workspace.id, deletion.id).state in ("queued", "running")
    assert profile_id in emulator_ids(server), "nothing was requested while the sync ran"

    db.finish_job(running.id, "other-worker", {})
    # requested now; Klaviyo (the emulator) deletes only after its simulated delay
    pending = wait_for(
        db,
        deletion.id,
        until=lambda j: (
            sum(1 for e in db.job_events(workspace.id, deletion.id) if e.event == "postponed") >= 1
            and any(
                entry["outcome"] == "pending"
                for entry in AppPrivacyLog(
                    db, workspace.id, deletion.id, master_key=KEY, clock=SystemClock()
                ).audit_entries(action="delete")
            )
        ),
    )
    assert pending.state in ("queued", "running")
    with http_client_for(server) as http:
        http.post("/_emulator/clock", json={"advance_seconds": 120})

    done = wait_for(db, deletion.id)

    assert done.state == "succeeded", done.last_error
    assert done.result is not None
    assert done.result["outcomes"] == {"confirmed": 1}
    assert profile_id not in emulator_ids(server)
    assert profile_id not in warehouse_ids(url)
    log = AppPrivacyLog(db, workspace.id, deletion.id, master_key=KEY, clock=SystemClock())
    outcomes = [e["outcome"] for e in log.audit_entries(action="delete")]
    assert outcomes.count("requested") == 1, outcomes  # confirmed later, not requested again
    assert outcomes[-1] == "confirmed"
    assert all(email not in str(e) for e in log.audit_entries())
    assert email.encode() not in b"".join(p.read_bytes() for p in tmp_path.glob("app.sqlite3*"))


def test_an_access_job_reports_each_subject_and_keeps_them_sealed(
    db: AppDatabase, service: InProcessService, server: EmulatorServer, tmp_path: Path
) -> None:
    workspace = db.create_workspace("acme")
    connection = connect(db, workspace.id, server, KEY)
    profile_id, email = _first_profile(server)
    params = seal_subjects(KEY, workspace.id, {"subjects": [email, "nobody@example.invalid"]})
    job = db.enqueue_job(workspace.id, "privacy_access", params, connection_id=connection)
    service.queue(job.id)

    done = wait_for(db, job.id)

    assert done.state == "succeeded", done.last_error
    assert done.result is not None
    assert done.result["report_count"] == 2
    # the people and their data are in the job row only sealed
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("app.sqlite3*"))
    assert email.encode() not in stored  # (the audit log names profiles by Klaviyo id)
    reports = open_sealed(KEY, workspace.id, SEALED_REPORTS, done.result[SEALED_REPORTS])
    with pytest.raises(ConnectionStoreError):  # bound to its workspace
        open_sealed(KEY, "another-workspace", SEALED_REPORTS, done.result[SEALED_REPORTS])
    assert [r["email"] for r in reports] == [email, "nobody@example.invalid"]
    assert [p["id"] for p in reports[0]["profiles"]] == [profile_id]
    assert reports[1]["profiles"] == []


def test_a_privacy_job_without_subjects_fails_at_once_naming_the_field(
    db: AppDatabase, service: InProcessService, server: EmulatorServer
) -> None:
    workspace = db.create_workspace("acme")
    connection = connect(db, workspace.id, server, KEY)
    job = db.enqueue_job(workspace.id, "privacy_delete", {}, connection_id=connection)
    service.queue(job.id)

    done = wait_for(db, job.id)

    assert done.state == "failed"
    assert done.attempts == 1
    assert done.last_error is not None
    assert done.last_error.startswith("params.subjects:")
