"""The app database on SQLite and PostgreSQL alike: tokens, job claims and leases, schedules."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, update

from kbridge.connections import Sender, generate_master_key
from kbridge.core import ManualClock
from kbridge.service.appdb import AppDatabase
from kbridge.service.connection_store import SqlConnectionStore
from kbridge.service.db import migrate, open_engine, schema_revision
from kbridge.service.errors import (
    ConflictError,
    InvalidScheduleError,
    LeaseLostError,
    NotFoundError,
)
from kbridge.service.models import Base, Job, Schedule

pytestmark = pytest.mark.integration

LEASE = timedelta(seconds=30)
_MASTER_KEY = generate_master_key()


def _connection(appdb: AppDatabase, workspace_id: str, name: str = "shop") -> str:
    """A connection saved through the service's store: jobs and schedules point at its id."""
    store = SqlConnectionStore(appdb.engine, workspace_id, master_key=_MASTER_KEY)
    return store.upsert(
        name,
        kind="api_key",
        base_url="http://127.0.0.1:1",
        account_id="ACCT",
        account_name=None,
        sender=Sender(),
        capabilities=(),
        scopes=(),
        secrets={"api_key": "pk_test"},
    ).id


# -- migrations ---------------------------------------------------------------------------------


def test_migrations_build_the_models_schema_from_empty(app_db_url: str) -> None:
    engine = open_engine(app_db_url)
    try:
        assert schema_revision(engine) is None
        migrate(app_db_url)
        migrate(app_db_url)  # again: a no-op, as on every start
        assert schema_revision(engine) == "0003"
        with engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert {"workspaces", "api_tokens", "connections", "schedules", "schedule_fires"} <= tables
        assert {"jobs", "job_events", "privacy_requests", "audit_log"} <= tables
        assert diff == [], "the migrations and the models disagree"
    finally:
        engine.dispose()


def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path: object) -> None:
    from pathlib import Path

    from kbridge.service.db import database_url

    url = database_url(Path(str(tmp_path)))
    assert url.endswith("/app.sqlite3")
    engine = open_engine(url)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


# -- workspaces and tokens ------------------------------------------------------------------------


def test_a_token_authenticates_its_own_workspace_only(appdb: AppDatabase) -> None:
    acme = appdb.create_workspace("acme")
    globex = appdb.create_workspace("globex")
    acme_token = appdb.create_token(acme.id, name="ci")
    globex_token = appdb.create_token(globex.id)

    who = appdb.authenticate(acme_token.token)
    assert who is not None
    assert (who.workspace_id, who.workspace_name) == (acme.id, "acme")
    other = appdb.authenticate(globex_token.token)
    assert other is not None
    assert other.workspace_id == globex.id

    assert (
        appdb.authenticate(acme_token.token[:-1] + ("A" if acme_token.token[-1] != "A" else "B"))
        is None
    )
    assert appdb.authenticate("") is None
    assert appdb.authenticate("kbt_" + "x" * 43) is None
    assert acme_token.token not in repr(acme_token)


def test_tokens_are_stored_hashed_and_revocable(appdb: AppDatabase) -> None:
    from kbridge.service.models import ApiToken

    ws = appdb.create_workspace("acme")
    issued = appdb.create_token(ws.id)
    with appdb.engine.connect() as connection:
        stored = connection.execute(select(ApiToken.token_hash)).scalar_one()
    assert issued.token.encode() not in bytes(stored)
    assert len(bytes(stored)) == 32
    appdb.revoke_token(ws.id, issued.id)
    assert appdb.authenticate(issued.token) is None


def test_a_workspace_name_is_unique(appdb: AppDatabase) -> None:
    appdb.create_workspace("acme")
    with pytest.raises(ConflictError, match="acme"):
        appdb.create_workspace("acme")


def test_another_workspaces_job_does_not_exist(appdb: AppDatabase) -> None:
    acme = appdb.create_workspace("acme")
    globex = appdb.create_workspace("globex")
    job = appdb.enqueue_job(acme.id, "analytics_refresh")
    assert appdb.job(acme.id, job.id).state == "queued"
    with pytest.raises(NotFoundError):
        appdb.job(globex.id, job.id)
    with pytest.raises(NotFoundError):
        appdb.cancel_job(globex.id, job.id)
    conn = _connection(appdb, acme.id)
    with pytest.raises(NotFoundError):
        appdb.enqueue_job(globex.id, "sync", connection_id=conn)


# -- jobs: claim, lease, finish ------------------------------------------------------------------


def test_a_job_runs_from_queued_to_succeeded_with_its_timeline(
    appdb: AppDatabase, clock: ManualClock
) -> None:
    ws = appdb.create_workspace("acme")
    job = appdb.enqueue_job(ws.id, "analytics_refresh", {"window": 30})
    claimed = appdb.claim_job("worker-1", lease=LEASE)
    assert claimed is not None
    assert (claimed.id, claimed.state, claimed.attempts) == (job.id, "running", 1)
    assert claimed.lease_expires_at == clock.now() + LEASE
    assert appdb.claim_job("worker-2", lease=LEASE) is None

    clock.advance(10)
    assert appdb.renew_lease(job.id, "worker-1", lease=LEASE, progress={"done": 3}) is True
    done = appdb.finish_job(job.id, "worker-1", {"rows": 7})
    assert (done.state, done.result, done.progress) == ("succeeded", {"rows": 7}, {"done": 3})
    assert done.params == {"window": 30}
    events = [e.event for e in appdb.job_events(ws.id, job.id)]
    assert events == ["queued", "claimed", "succeeded"]


def test_two_claimers_in_parallel_never_claim_the_same_job(appdb: AppDatabase) -> None:
    ws = appdb.create_workspace("acme")
    queued = {appdb.enqueue_job(ws.id, "analytics_refresh", {"i": i}).id for i in range(40)}
    claims: dict[str, list[str]] = {f"w{n}": [] for n in range(4)}
    start = threading.Barrier(len(claims))
    errors: list[BaseException] = []

    def claimer(owner: str) -> None:
        try:
            start.wait()
            while (job := appdb.claim_job(owner, lease=LEASE)) is not None:
                claims[owner].append(job.id)
        except BaseException as exc:  # surfaced below: a thread's error must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(owner,)) for owner in claims]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    everything = [job_id for ids in claims.values() for job_id in ids]
    assert len(everything) == len(set(everything)), "a job was claimed twice"
    assert set(everything) == queued
    for owner, ids in claims.items():
        for job_id in ids:
            assert appdb.job(ws.id, job_id).lease_owner == owner


def test_an_expired_lease_is_claimable_again_and_the_old_worker_is_told(
    appdb: AppDatabase, clock: ManualClock
) -> None:
    ws = appdb.create_workspace("acme")
    job = appdb.enqueue_job(ws.id, "analytics_refresh")
    assert appdb.claim_job("dead-worker", lease=LEASE) is not None
    clock.advance(29)
    assert appdb.claim_job("worker-2", lease=LEASE) is None  # still leased
    clock.advance(2)
    again = appdb.claim_job("worker-2", lease=LEASE)
    assert again is not None
    assert (again.id, again.lease_owner, again.attempts) == (job.id, "worker-2", 2)
    with pytest.raises(LeaseLostError):
        appdb.renew_lease(job.id, "dead-worker")
    with pytest.raises(LeaseLostError):
        appdb.finish_job(job.id, "dead-worker")
    assert appdb.finish_job(job.id, "worker-2").state == "succeeded"


def test_a_second_sync_of_a_connection_waits_while_one_runs(
    appdb: AppDatabase, clock: ManualClock
) -> None:
    ws = appdb.create_workspace("acme")
    shop = _connection(appdb, ws.id, "shop")
    other = _connection(appdb, ws.id, "outlet")
    first = appdb.enqueue_job(ws.id, "sync", connection_id=shop)
    clock.advance(1)  # the oldest is claimed first
    second = appdb.enqueue_job(ws.id, "sync", connection_id=shop)
    elsewhere = appdb.enqueue_job(ws.id, "sync", connection_id=other)
    report = appdb.enqueue_job(ws.id, "report", connection_id=shop)

    a = appdb.claim_job("w1", lease=LEASE)
    assert a is not None
    assert a.id == first.id
    taken = [appdb.claim_job("w2", lease=LEASE), appdb.claim_job("w3", lease=LEASE)]
    assert {j.id for j in taken if j is not None} == {elsewhere.id, report.id}
    assert appdb.claim_job("w4", lease=LEASE) is None
    assert appdb.claim_job("w4", lease=LEASE, job_id=second.id) is None  # asked by id: still no
    assert appdb.job(ws.id, second.id).state == "queued"

    appdb.finish_job(first.id, "w1")
    b = appdb.claim_job("w4", lease=LEASE)
    assert b is not None
    assert b.id == second.id


def test_parallel_claimers_never_run_two_syncs_of_one_connection(appdb: AppDatabase) -> None:
    ws = appdb.create_workspace("acme")
    shop = _connection(appdb, ws.id)
    for _ in range(6):
        appdb.enqueue_job(ws.id, "sync", connection_id=shop)
    start = threading.Barrier(6)
    got: list[str] = []
    errors: list[BaseException] = []

    def claimer(owner: str) -> None:
        try:
            start.wait()
            job = appdb.claim_job(owner, lease=LEASE)
            if job is not None:
                got.append(job.id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(got) == 1
    assert len(appdb.jobs(ws.id, states=["running"])) == 1


def test_a_failure_retries_until_attempts_run_out_unless_it_cannot_heal(
    appdb: AppDatabase, clock: ManualClock
) -> None:
    ws = appdb.create_workspace("acme")
    job = appdb.enqueue_job(ws.id, "report", max_attempts=2)
    appdb.claim_job("w1", lease=LEASE)
    retried = appdb.fail_job(job.id, "w1", "timeout", retry_after=timedelta(seconds=60))
    assert (retried.state, retried.last_error) == ("queued", "timeout")
    assert appdb.claim_job("w1", lease=LEASE) is None  # backing off
    clock.advance(60)
    assert appdb.claim_job("w1", lease=LEASE) is not None
    final = appdb.fail_job(job.id, "w1", "timeout again")
    assert (final.state, final.attempts, final.last_error) == ("failed", 2, "timeout again")

    revoked = appdb.enqueue_job(ws.id, "report")
    appdb.claim_job("w1", lease=LEASE)
    stopped = appdb.fail_job(revoked.id, "w1", "the key was revoked: connect again", retry=False)
    assert (stopped.state, stopped.attempts) == ("failed", 1)


def test_cancel_is_immediate_when_queued_and_asked_of_the_worker_when_running(
    appdb: AppDatabase,
) -> None:
    ws = appdb.create_workspace("acme")
    queued = appdb.enqueue_job(ws.id, "report")
    assert appdb.cancel_job(ws.id, queued.id).state == "cancelled"
    assert appdb.claim_job("w1", lease=LEASE) is None
    with pytest.raises(ConflictError):
        appdb.cancel_job(ws.id, queued.id)

    running = appdb.enqueue_job(ws.id, "report")
    appdb.claim_job("w1", lease=LEASE)
    assert appdb.cancel_job(ws.id, running.id).state == "running"
    assert appdb.renew_lease(running.id, "w1", lease=LEASE) is False
    assert appdb.acknowledge_cancel(running.id, "w1").state == "cancelled"


def test_recovery_on_start_requeues_jobs_of_dead_workers(
    appdb: AppDatabase, clock: ManualClock
) -> None:
    ws = appdb.create_workspace("acme")
    orphan = appdb.enqueue_job(ws.id, "report")
    clock.advance(1)  # recovery lists the oldest first
    waiting = appdb.enqueue_job(ws.id, "report")
    live = appdb.enqueue_job(ws.id, "report")
    exhausted = appdb.enqueue_job(ws.id, "report", max_attempts=1)
    appdb.claim_job("dead", lease=LEASE, job_id=orphan.id)
    appdb.claim_job("dead", lease=LEASE, job_id=exhausted.id)
    clock.advance(LEASE.total_seconds() + 1)
    appdb.claim_job("alive", lease=LEASE, job_id=live.id)

    assert appdb.recover_jobs() == [orphan.id, waiting.id]
    assert appdb.job(ws.id, orphan.id).state == "queued"
    assert appdb.job(ws.id, live.id).lease_owner == "alive"
    failed = appdb.job(ws.id, exhausted.id)
    assert failed.state == "failed"
    assert failed.last_error is not None
    assert "dead" in failed.last_error


# -- schedules ------------------------------------------------------------------------------


def test_a_due_time_fires_once_however_many_schedulers_try(
    appdb: AppDatabase, clock: ManualClock
) -> None:
    ws = appdb.create_workspace("acme")
    shop = _connection(appdb, ws.id)
    due = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
    schedule = appdb.create_schedule(
        ws.id, shop, "sync", daily_at="06:00", timezone="UTC", next_due=due
    )
    assert [s.id for s in appdb.due_schedules()] == [schedule.id]

    tomorrow = due + timedelta(days=1)
    fired = appdb.fire_schedule(schedule.id, due, next_due=tomorrow)
    assert fired is not None
    assert (fired.kind, fired.connection_id, fired.state) == ("sync", shop, "queued")
    assert appdb.fire_schedule(schedule.id, due, next_due=tomorrow) is None
    assert appdb.schedule_fires(schedule.id) == [(due, fired.id)]
    assert appdb.due_schedules() == []
    assert [e.event for e in appdb.job_events(ws.id, fired.id)] == ["scheduled"]


def test_parallel_fires_of_one_due_time_make_one_job(appdb: AppDatabase) -> None:
    ws = appdb.create_workspace("acme")
    shop = _connection(appdb, ws.id)
    due = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
    schedule = appdb.create_schedule(ws.id, shop, "sync", cron="0 6 * * *", next_due=due)
    start = threading.Barrier(4)
    results: list[str | None] = []
    errors: list[BaseException] = []

    def scheduler() -> None:
        try:
            start.wait()
            job = appdb.fire_schedule(schedule.id, due, next_due=due + timedelta(days=1))
            results.append(None if job is None else job.id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=scheduler) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    made = [r for r in results if r is not None]
    assert len(made) == 1
    assert [j.id for j in appdb.jobs(ws.id)] == made
    with appdb.engine.connect() as connection:
        assert connection.execute(select(Job.id)).scalars().all() == made


def test_a_schedule_needs_one_way_of_saying_when(appdb: AppDatabase) -> None:
    ws = appdb.create_workspace("acme")
    shop = _connection(appdb, ws.id)
    with pytest.raises(ConflictError):
        appdb.create_schedule(ws.id, shop, "sync")
    with pytest.raises(ConflictError):
        appdb.create_schedule(ws.id, shop, "sync", daily_at="06:00", cron="0 6 * * *")


def test_a_new_schedule_is_first_due_at_its_next_time_from_the_clock(
    appdb: AppDatabase, clock: ManualClock
) -> None:
    ws = appdb.create_workspace("acme")
    shop = _connection(appdb, ws.id)
    # the clock reads 09:00 UTC on 1 March 2026: 10:00 in Berlin, past 06:00 there
    daily = appdb.create_schedule(ws.id, shop, "sync", daily_at="06:00", timezone="Europe/Berlin")
    assert daily.next_due == datetime(2026, 3, 2, 5, 0, tzinfo=UTC)
    weekdays = appdb.create_schedule(
        ws.id, shop, "sync", cron="30 7 * * mon-fri", timezone="America/New_York"
    )
    assert weekdays.next_due == datetime(2026, 3, 2, 12, 30, tzinfo=UTC)  # Monday 07:30 EST
    assert appdb.due_schedules() == []

    clock.set_now(datetime(2026, 3, 2, 5, 0, tzinfo=UTC))
    job = appdb.fire_schedule(daily.id, datetime(2026, 3, 2, 5, 0, tzinfo=UTC))
    assert job is not None
    # without next_due, fire_schedule moves the schedule on by its own times
    with appdb.engine.connect() as connection:
        stored = connection.scalar(select(Schedule.next_due).where(Schedule.id == daily.id))
    assert stored == datetime(2026, 3, 3, 5, 0, tzinfo=UTC)


def test_a_schedule_missed_for_three_days_fires_once_on_start(
    appdb: AppDatabase, clock: ManualClock
) -> None:
    ws = appdb.create_workspace("acme")
    shop = _connection(appdb, ws.id)
    schedule = appdb.create_schedule(
        ws.id, shop, "sync", daily_at="06:00", timezone="Europe/Berlin"
    )
    assert schedule.next_due == datetime(2026, 3, 2, 5, 0, tzinfo=UTC)

    # everything was down from before 2 March 06:00 Berlin until 4 March 10:00 UTC
    clock.set_now(datetime(2026, 3, 4, 10, 0, tzinfo=UTC))
    fired = appdb.fire_due()
    assert [(j.kind, j.connection_id) for j in fired] == [("sync", shop)]
    assert appdb.schedule_fires(schedule.id) == [
        (datetime(2026, 3, 4, 5, 0, tzinfo=UTC), fired[0].id)
    ]
    assert appdb.due_schedules() == []
    assert appdb.fire_due() == []
    assert [j.id for j in appdb.jobs(ws.id)] == [fired[0].id]

    # the next day, as usual
    clock.set_now(datetime(2026, 3, 5, 5, 0, tzinfo=UTC))
    again = appdb.fire_due()
    assert len(again) == 1
    assert [due for due, _ in appdb.schedule_fires(schedule.id)] == [
        datetime(2026, 3, 4, 5, 0, tzinfo=UTC),
        datetime(2026, 3, 5, 5, 0, tzinfo=UTC),
    ]


def test_concurrent_fire_due_callers_make_one_job_per_due_time(
    appdb: AppDatabase, clock: ManualClock
) -> None:
    ws = appdb.create_workspace("acme")
    shop = _connection(appdb, ws.id)
    daily = appdb.create_schedule(ws.id, shop, "sync", daily_at="06:00", timezone="UTC")
    hourly = appdb.create_schedule(ws.id, shop, "report", cron="0 * * * *", timezone="UTC")
    made: list[str] = []
    errors: list[BaseException] = []

    def scheduler(start: threading.Barrier) -> None:
        try:
            start.wait()
            made.extend(job.id for job in appdb.fire_due())
        except BaseException as exc:
            errors.append(exc)

    for day in (2, 3):
        clock.set_now(datetime(2026, 3, day, 6, 30, tzinfo=UTC))
        start = threading.Barrier(4)
        threads = [threading.Thread(target=scheduler, args=(start,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert [due for due, _ in appdb.schedule_fires(daily.id)] == [
        datetime(2026, 3, 2, 6, 0, tzinfo=UTC),
        datetime(2026, 3, 3, 6, 0, tzinfo=UTC),
    ]
    assert [due for due, _ in appdb.schedule_fires(hourly.id)] == [
        datetime(2026, 3, 2, 6, 0, tzinfo=UTC),
        datetime(2026, 3, 3, 6, 0, tzinfo=UTC),
    ]
    assert len(made) == 4
    assert sorted(j.id for j in appdb.jobs(ws.id)) == sorted(made)


def test_a_stored_schedule_gone_bad_does_not_hold_up_the_others(
    appdb: AppDatabase, clock: ManualClock
) -> None:
    ws = appdb.create_workspace("acme")
    shop = _connection(appdb, ws.id)
    broken = appdb.create_schedule(ws.id, shop, "sync", daily_at="06:00", timezone="UTC")
    fine = appdb.create_schedule(ws.id, shop, "report", daily_at="07:00", timezone="UTC")
    # a zone a later tz database no longer knows (or a row written by hand)
    with appdb.engine.begin() as connection:
        connection.execute(
            update(Schedule).where(Schedule.id == broken.id).values(timezone="Gone/Away")
        )
    clock.set_now(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    fired = appdb.fire_due()
    assert [j.kind for j in fired] == ["report"]
    assert appdb.schedule_fires(fine.id) == [(datetime(2026, 3, 2, 7, 0, tzinfo=UTC), fired[0].id)]
    assert [s.id for s in appdb.due_schedules()] == [broken.id]


@pytest.mark.parametrize(
    ("when", "field"),
    [
        ({"daily_at": "6am"}, "daily_at"),
        ({"daily_at": "06:00", "timezone": "Berlin"}, "timezone"),
        ({"cron": "0 6 * * * *"}, "cron"),
        ({"cron": "0 25 * * *"}, "cron"),
    ],
)
def test_a_bad_schedule_is_a_one_line_error_naming_the_field(
    appdb: AppDatabase, when: dict[str, str], field: str
) -> None:
    ws = appdb.create_workspace("acme")
    shop = _connection(appdb, ws.id)
    with pytest.raises(InvalidScheduleError) as caught:
        appdb.create_schedule(ws.id, shop, "sync", **when)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert "\n" not in str(caught.value)
    with appdb.engine.connect() as connection:
        assert connection.execute(select(Schedule.id)).all() == []


def test_services_starting_at_once_migrate_once(app_db_url: str) -> None:
    start = threading.Barrier(3)
    errors: list[BaseException] = []

    def starter() -> None:
        try:
            start.wait()
            migrate(app_db_url)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=starter) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    engine = open_engine(app_db_url)
    try:
        assert schema_revision(engine) == "0003"
    finally:
        engine.dispose()


_CLAIMER = """
import sys
from datetime import timedelta
from kbridge.service.appdb import AppDatabase
db = AppDatabase.open(sys.argv[1], upgrade=False)
got = []
while (job := db.claim_job(sys.argv[2], lease=timedelta(minutes=5))) is not None:
    got.append(job.id)
print(" ".join(got))
"""


def test_claimers_in_separate_processes_never_share_a_job(
    appdb: AppDatabase, app_db_url: str
) -> None:
    import subprocess
    import sys

    ws = appdb.create_workspace("acme")
    queued = {appdb.enqueue_job(ws.id, "report", {"i": i}).id for i in range(30)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CLAIMER, app_db_url, f"proc-{n}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(3)
    ]
    claimed: list[str] = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        claimed.extend(out.split())
    assert len(claimed) == len(set(claimed)), "a job was claimed by two processes"
    assert set(claimed) == queued


def test_a_bad_or_unreachable_database_is_one_clear_line() -> None:
    import socket

    from kbridge.service.errors import AppDatabaseError

    with pytest.raises(AppDatabaseError, match="SQLite or PostgreSQL"):
        open_engine("mysql://db.test/kbridge")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(AppDatabaseError, match="cannot migrate") as caught:
        migrate(f"postgresql://kb:hunter2@127.0.0.1:{port}/app")
    assert "\n" not in str(caught.value)
    assert "hunter2" not in str(caught.value)
