"""The scheduler one tick at a time on a ManualClock: what it dispatches, and when."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kbridge.connections import Sender, generate_master_key
from kbridge.core import ManualClock
from kbridge.service.appdb import AppDatabase
from kbridge.service.connection_store import SqlConnectionStore
from kbridge.service.db import database_url
from kbridge.service.scheduler import Scheduler

pytestmark = pytest.mark.integration

KEY = generate_master_key()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 1, 5, 0, tzinfo=UTC))


@pytest.fixture
def db(tmp_path: Path, clock: ManualClock) -> Iterator[AppDatabase]:
    appdb = AppDatabase.open(database_url(tmp_path), clock=clock)
    try:
        yield appdb
    finally:
        appdb.close()


def _connection(db: AppDatabase, workspace_id: str) -> str:
    store = SqlConnectionStore(db.engine, workspace_id, master_key=KEY)
    return store.upsert(
        "shop",
        kind="api_key",
        base_url="http://127.0.0.1:1",
        account_id="ACCT",
        account_name=None,
        sender=Sender(),
        capabilities=(),
        scopes=(),
        secrets={"api_key": "pk_test"},
    ).id


def test_a_due_schedule_is_dispatched_once_and_missed_days_run_once(
    db: AppDatabase, clock: ManualClock
) -> None:
    workspace = db.create_workspace("acme")
    connection = _connection(db, workspace.id)
    db.create_schedule(workspace.id, connection, "sync", daily_at="06:00")
    sent: list[str] = []
    # no worker runs the jobs here: keep the lost-message sweep out of this test
    scheduler = Scheduler(db, sent.append, clock=clock, requeue_after=timedelta(days=30))

    assert scheduler.start() == []
    assert scheduler.tick() == []
    clock.advance(timedelta(hours=1, seconds=1).total_seconds())  # 06:00:01
    first = scheduler.tick()
    assert len(first) == 1
    assert scheduler.tick() == []  # the same due time never fires twice
    clock.advance(timedelta(days=3).total_seconds())  # three 06:00s passed while nothing ran
    second = scheduler.tick()

    assert len(second) == 1
    assert sent == first + second
    jobs = db.jobs(workspace.id)
    assert {j.id for j in jobs} == set(sent)
    assert all(j.kind == "sync" and j.connection_id == connection for j in jobs)


def test_a_worker_schedulers_fire_no_schedules(db: AppDatabase, clock: ManualClock) -> None:
    workspace = db.create_workspace("acme")
    db.create_schedule(workspace.id, _connection(db, workspace.id), "sync", daily_at="06:00")
    sent: list[str] = []
    scheduler = Scheduler(db, sent.append, clock=clock, fire_schedules=False)

    clock.advance(timedelta(hours=2).total_seconds())
    scheduler.tick()

    assert sent == []


def test_start_dispatches_every_queued_job_again(db: AppDatabase, clock: ManualClock) -> None:
    # queued while no process ran: whatever the broker held is gone
    workspace = db.create_workspace("acme")
    a = db.enqueue_job(workspace.id, "sync", connection_id=_connection(db, workspace.id))
    b = db.enqueue_job(workspace.id, "privacy_access")
    sent: list[str] = []

    Scheduler(db, sent.append, clock=clock).start()

    # both at once on the test's clock: oldest first, ties in id order (the ids are random)
    assert sorted(sent) == sorted([a.id, b.id])
    assert len(sent) == 2


def test_a_job_whose_worker_stopped_renewing_is_dispatched_again_after_its_lease(
    db: AppDatabase, clock: ManualClock
) -> None:
    workspace = db.create_workspace("acme")
    job = db.enqueue_job(workspace.id, "privacy_access")
    claimed = db.claim_job("dead-worker", lease=timedelta(seconds=30), job_id=job.id)
    assert claimed is not None
    sent: list[str] = []
    scheduler = Scheduler(db, sent.append, clock=clock)

    clock.advance(timedelta(seconds=29).total_seconds())
    assert scheduler.tick() == []  # the lease still runs: its worker may be alive
    clock.advance(timedelta(seconds=2).total_seconds())
    assert scheduler.tick() == [job.id]

    again = db.job(workspace.id, job.id)
    assert again.state == "queued"
    assert again.lease_owner is None
    assert [e.event for e in db.job_events(workspace.id, job.id)][-1] == "recovered"
    assert scheduler.tick() == []  # recovered once, not on every tick


def test_a_dead_workers_job_with_no_attempts_left_fails_instead(
    db: AppDatabase, clock: ManualClock
) -> None:
    workspace = db.create_workspace("acme")
    job = db.enqueue_job(workspace.id, "privacy_access", max_attempts=1)
    assert db.claim_job("dead-worker", lease=timedelta(seconds=30), job_id=job.id) is not None
    sent: list[str] = []

    clock.advance(timedelta(minutes=1).total_seconds())
    Scheduler(db, sent.append, clock=clock).tick()

    assert sent == []
    failed = db.job(workspace.id, job.id)
    assert failed.state == "failed"
    assert failed.last_error is not None
    assert "stopped renewing" in failed.last_error


def test_a_job_whose_message_was_lost_is_dispatched_again_once_per_interval(
    db: AppDatabase, clock: ManualClock
) -> None:
    sent: list[str] = []
    scheduler = Scheduler(db, sent.append, clock=clock, requeue_after=timedelta(minutes=5))
    scheduler.start()
    workspace = db.create_workspace("acme")
    # queued, and its message lost (a broker restarted): nothing was dispatched
    job = db.enqueue_job(workspace.id, "privacy_access")

    clock.advance(timedelta(minutes=4).total_seconds())
    assert scheduler.tick() == []  # not yet: its message may still be on its way
    clock.advance(timedelta(minutes=2).total_seconds())
    assert scheduler.tick() == [job.id]
    clock.advance(timedelta(seconds=10).total_seconds())
    assert scheduler.tick() == []  # once per interval, not on every tick
    clock.advance(timedelta(minutes=5).total_seconds())
    assert scheduler.tick() == [job.id]
