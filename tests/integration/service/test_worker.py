"""The job engine in one process: the stub broker's worker thread runs the real actor."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from kbridge.connections import generate_master_key
from kbridge.emulator.server import EmulatorServer
from kbridge.service.appdb import AppDatabase
from kbridge.service.db import database_url
from kbridge.service.jobs import WorkerSettings, default_warehouse_url
from kbridge.service.worker import InProcessService, start_in_process

from .jobhelp import BAD_KEY, connect, emulator_ids, wait_for, warehouse_ids

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
def settings(tmp_path: Path) -> WorkerSettings:
    return WorkerSettings(
        data_dir=tmp_path,
        master_key=KEY,
        lease=timedelta(seconds=6),
        retry_backoff=timedelta(milliseconds=100),
        busy_retry=timedelta(milliseconds=100),
    )


@pytest.fixture
def service(db: AppDatabase, settings: WorkerSettings) -> Iterator[InProcessService]:
    handle = start_in_process(db, settings, threads=2, tick_every=timedelta(milliseconds=200))
    try:
        yield handle
    finally:
        handle.stop()


def test_a_queued_sync_runs_to_succeeded_with_the_accounts_records(
    db: AppDatabase, service: InProcessService, emulator: EmulatorServer, tmp_path: Path
) -> None:
    workspace = db.create_workspace("acme")
    connection = connect(db, workspace.id, emulator, KEY)
    job = db.enqueue_job(
        workspace.id, "sync", {"streams": ["profiles", "lists"]}, connection_id=connection
    )
    service.queue(job.id)

    done = wait_for(db, job.id)

    assert done.state == "succeeded", done.last_error
    assert done.attempts == 1
    profiles = emulator_ids(emulator, "/api/profiles")
    lists = emulator_ids(emulator, "/api/lists")
    assert done.result is not None
    assert done.result["streams"] == {
        "profiles": {"records": len(profiles)},
        "lists": {"records": len(lists)},
    }
    # the default warehouse: a DuckDB file of this connection under the data directory
    url = default_warehouse_url(tmp_path, workspace.id, "shop")
    stored = warehouse_ids(url, "profiles")
    assert sorted(stored) == sorted(profiles)


def test_a_refused_key_fails_once_with_one_line_and_is_not_retried(
    db: AppDatabase, service: InProcessService, emulator: EmulatorServer
) -> None:
    workspace = db.create_workspace("acme")
    connection = connect(db, workspace.id, emulator, KEY, api_key=BAD_KEY)
    job = db.enqueue_job(workspace.id, "sync", {"streams": ["profiles"]}, connection_id=connection)
    service.queue(job.id)

    done = wait_for(db, job.id)

    assert done.state == "failed"
    assert done.attempts == 1
    assert done.last_error is not None
    assert "\n" not in done.last_error
    assert "connect it again" in done.last_error
    assert "shop" in done.last_error
    assert BAD_KEY not in done.last_error
    events = [e.event for e in db.job_events(workspace.id, job.id)]
    assert events == ["queued", "claimed", "failed"]


def test_a_transient_failure_is_retried_with_backoff_then_succeeds(
    db: AppDatabase,
    service: InProcessService,
    emulator_factory: object,
) -> None:
    # every request answers 503 until the emulator is told to stop: the job must retry

    from kbridge.testing.plugin import http_client_for

    start: Callable[..., EmulatorServer] = emulator_factory  # type: ignore[assignment]
    server = start()
    workspace = db.create_workspace("acme")
    connection = connect(db, workspace.id, server, KEY)
    with http_client_for(server) as http:
        assert http.post("/_emulator/faults", json={"http503": 1.0}).status_code < 300
    job = db.enqueue_job(
        workspace.id, "sync", {"streams": ["profiles"]}, connection_id=connection, max_attempts=5
    )
    service.queue(job.id)
    first = wait_for(db, job.id, until=lambda j: j.attempts >= 1 and j.state == "queued")
    assert first.last_error is not None
    assert "\n" not in first.last_error
    with http_client_for(server) as http:
        assert http.post("/_emulator/faults", json={"spec": "off"}).status_code < 300

    done = wait_for(db, job.id)

    assert done.state == "succeeded", done.last_error
    assert done.attempts >= 2
    events = [e.event for e in db.job_events(workspace.id, job.id)]
    assert "retry" in events


def test_an_unknown_kind_fails_at_once(db: AppDatabase, service: InProcessService) -> None:
    workspace = db.create_workspace("acme")
    job = db.enqueue_job(workspace.id, "teleport")
    service.queue(job.id)

    done = wait_for(db, job.id)

    assert done.state == "failed"
    assert done.attempts == 1
    assert done.last_error == "no worker can run jobs of kind 'teleport'"


def test_a_job_queued_before_the_start_is_recovered_and_run(
    db: AppDatabase, settings: WorkerSettings, emulator: EmulatorServer
) -> None:
    # queued while nothing ran: no message was ever sent for it
    workspace = db.create_workspace("acme")
    connection = connect(db, workspace.id, emulator, KEY)
    job = db.enqueue_job(workspace.id, "sync", {"streams": ["lists"]}, connection_id=connection)

    handle = start_in_process(db, settings, tick_every=timedelta(milliseconds=200))
    try:
        done = wait_for(db, job.id)
    finally:
        handle.stop()

    assert done.state == "succeeded", done.last_error
    assert done.result is not None
    assert done.result["streams"] == {
        "lists": {"records": len(emulator_ids(emulator, "/api/lists"))}
    }


@pytest.fixture
def slow_server(emulator_factory: Callable[..., EmulatorServer]) -> EmulatorServer:
    """Pages that take a while: a sync is still running when the test acts on it."""
    return emulator_factory(profiles=600, events=50, faults="latency=200ms")


def test_a_running_sync_asked_to_cancel_stops_and_ends_cancelled(
    db: AppDatabase, settings: WorkerSettings, slow_server: EmulatorServer
) -> None:
    handle = start_in_process(
        db,
        replace(settings, lease=timedelta(seconds=1.5)),
        tick_every=timedelta(milliseconds=200),
    )
    try:
        workspace = db.create_workspace("acme")
        connection = connect(db, workspace.id, slow_server, KEY)
        job = db.enqueue_job(
            workspace.id, "sync", {"streams": ["profiles"]}, connection_id=connection
        )
        handle.queue(job.id)
        wait_for(db, job.id, states=("running",))

        db.cancel_job(workspace.id, job.id)
        done = wait_for(db, job.id)
    finally:
        handle.stop()

    assert done.state == "cancelled"
    assert done.attempts == 1
    events = [e.event for e in db.job_events(workspace.id, job.id)]
    assert events == ["queued", "claimed", "cancel_requested", "cancelled"]


def test_a_worker_stopping_puts_its_running_job_back_without_spending_an_attempt(
    db: AppDatabase, settings: WorkerSettings, slow_server: EmulatorServer
) -> None:
    handle = start_in_process(db, settings, tick_every=timedelta(milliseconds=200))
    workspace = db.create_workspace("acme")
    connection = connect(db, workspace.id, slow_server, KEY)
    job = db.enqueue_job(workspace.id, "sync", {"streams": ["profiles"]}, connection_id=connection)
    try:
        handle.queue(job.id)
        wait_for(db, job.id, states=("running",))
    finally:
        handle.stop()

    stopped = db.job(workspace.id, job.id)
    assert stopped.state == "queued"
    assert stopped.attempts == 0
    assert stopped.lease_owner is None
    assert [e.event for e in db.job_events(workspace.id, job.id)][-1] == "postponed"

    # the next start runs it to the end
    again = start_in_process(db, settings, tick_every=timedelta(milliseconds=200))
    try:
        done = wait_for(db, job.id)
    finally:
        again.stop()
    assert done.state == "succeeded", done.last_error
    assert sorted(
        warehouse_ids(default_warehouse_url(settings.data_dir, workspace.id, "shop"))
    ) == (sorted(emulator_ids(slow_server)))
