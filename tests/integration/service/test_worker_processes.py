"""Real `kbridge worker` processes on Redis and PostgreSQL: once, kill -9, one sync at a time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from kbridge.connections import generate_master_key
from kbridge.emulator.server import EmulatorServer
from kbridge.service.appdb import AppDatabase
from kbridge.service.broker import JobQueue, make_broker
from kbridge.service.jobs import default_warehouse_url
from kbridge.testing.redis import RedisServer

from .jobhelp import account_id, connect, emulator_ids, wait_for, warehouse_ids

pytestmark = pytest.mark.integration

KEY = generate_master_key()
#: short, so a dead worker's job moves on soon; renewed every third of it
LEASE_SECONDS = 4


class Workers:
    """`kbridge worker` processes sharing one app database, one Redis and one data directory."""

    def __init__(self, database: str, broker: str, home: Path) -> None:
        self.database = database
        self.broker = broker
        self.home = home
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, count: int = 2) -> None:
        """Start ``count`` workers at once and wait until each says it is ready."""
        env = {**os.environ, "KBRIDGE_HOME": str(self.home), "KBRIDGE_MASTER_KEY": KEY.hex()}
        logs = []
        for _ in range(count):
            log = self.home / f"worker-{len(self.processes)}.log"
            with log.open("wb") as out:
                self.processes.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-c",
                            "from kbridge.cli import main; main()",
                            "worker",
                            "--database",
                            self.database,
                            "--broker",
                            self.broker,
                            "--threads",
                            "2",
                            "--lease",
                            str(LEASE_SECONDS),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=out,
                        env=env,
                    )
                )
            logs.append((self.processes[-1], log))
        deadline = time.monotonic() + 60
        for process, log in logs:
            while b"ready" not in log.read_bytes():
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the worker never said ready"
                time.sleep(0.05)

    def by_pid(self, pid: int) -> subprocess.Popen[bytes]:
        return next(p for p in self.processes if p.pid == pid)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def db(postgres_url: str) -> Iterator[AppDatabase]:
    appdb = AppDatabase.open(postgres_url)
    try:
        yield appdb
    finally:
        appdb.close()


@pytest.fixture
def workers(postgres_url: str, redis_url: str, tmp_path: Path) -> Iterator[Workers]:
    group = Workers(postgres_url, redis_url, tmp_path)
    try:
        yield group
    finally:
        group.stop()


@pytest.fixture
def queue(redis_url: str) -> JobQueue:
    return JobQueue(make_broker(redis_url))


@pytest.fixture
def slow_emulator(emulator_factory: Callable[..., EmulatorServer]) -> EmulatorServer:
    """Pages that take a while: a sync lasts long enough to be interrupted."""
    return emulator_factory(profiles=800, events=50, faults="latency=200ms")


def test_a_sync_sent_twice_to_two_workers_runs_exactly_once(
    db: AppDatabase,
    workers: Workers,
    queue: JobQueue,
    emulator: EmulatorServer,
    tmp_path: Path,
    redis_url: str,
) -> None:
    workers.start(2)
    workspace = db.create_workspace("acme")
    # paced to Klaviyo's published limits: the budget lives in Redis, under the account
    connection = connect(db, workspace.id, emulator, KEY, rate_limits="spec")
    job = db.enqueue_job(workspace.id, "sync", {"streams": ["profiles"]}, connection_id=connection)

    queue.enqueue(job.id)
    queue.enqueue(job.id)  # a duplicate delivery: the second claim must find nothing
    done = wait_for(db, job.id)

    assert done.state == "succeeded", done.last_error
    assert done.attempts == 1
    events = [e.event for e in db.job_events(workspace.id, job.id)]
    assert events.count("claimed") == 1
    profiles = emulator_ids(emulator)
    assert done.result is not None
    assert done.result["streams"] == {"profiles": {"records": len(profiles)}}
    url = default_warehouse_url(tmp_path, workspace.id, "shop")
    assert sorted(warehouse_ids(url)) == sorted(profiles)
    with redis.Redis.from_url(redis_url) as client:
        budgets = {key.decode() for key in client.scan_iter("kbridge:rate:*")}
    assert budgets, "the sync's rate budget is not in Redis"
    assert all(f"{{{account_id(emulator)}|" in key for key in budgets), budgets


def test_a_worker_killed_mid_sync_loses_its_job_to_another_and_nothing_is_lost_or_doubled(
    db: AppDatabase,
    workers: Workers,
    queue: JobQueue,
    slow_emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    workers.start(2)
    workspace = db.create_workspace("acme")
    connection = connect(db, workspace.id, slow_emulator, KEY)
    job = db.enqueue_job(
        workspace.id, "sync", {"streams": ["profiles"]}, connection_id=connection, max_attempts=5
    )
    queue.enqueue(job.id)

    # mid-sync: some pages committed (progress is written with each lease renewal)
    running = wait_for(
        db,
        job.id,
        until=lambda j: j.state == "running" and bool((j.progress or {}).get("streams")),
    )
    assert running.lease_owner is not None
    victim = workers.by_pid(int(running.lease_owner.split(":")[1]))
    victim.send_signal(signal.SIGKILL)
    victim.wait()

    done = wait_for(db, job.id)

    assert done.state == "succeeded", done.last_error
    assert done.attempts >= 2
    events = [e.event for e in db.job_events(workspace.id, job.id)]
    assert events.count("claimed") >= 2
    assert "recovered" in events
    stored = warehouse_ids(default_warehouse_url(tmp_path, workspace.id, "shop"))
    assert len(stored) == len(set(stored)), "a profile was written twice"
    assert set(stored) == emulator_ids(slow_emulator)


def test_two_syncs_of_one_connection_on_two_workers_never_run_at_once(
    db: AppDatabase,
    workers: Workers,
    queue: JobQueue,
    emulator_factory: Callable[..., EmulatorServer],
    tmp_path: Path,
) -> None:
    server = emulator_factory(profiles=300, events=50, faults="latency=100ms")
    workers.start(2)
    workspace = db.create_workspace("acme")
    connection = connect(db, workspace.id, server, KEY)
    first = db.enqueue_job(
        workspace.id, "sync", {"streams": ["profiles"]}, connection_id=connection
    )
    second = db.enqueue_job(
        workspace.id, "sync", {"streams": ["profiles"]}, connection_id=connection
    )
    queue.enqueue(first.id)
    queue.enqueue(second.id)

    a = wait_for(db, first.id)
    b = wait_for(db, second.id)

    assert a.state == b.state == "succeeded", (a.last_error, b.last_error)
    assert a.started_at is not None
    assert b.started_at is not None
    assert a.finished_at is not None
    assert b.finished_at is not None
    # one ran after the other: the app database's timestamps, not a stopwatch
    earlier, later = sorted([a, b], key=lambda j: j.started_at or j.created_at)
    assert earlier.finished_at is not None
    assert later.started_at is not None
    assert earlier.finished_at <= later.started_at
    stored = warehouse_ids(default_warehouse_url(tmp_path, workspace.id, "shop"))
    assert sorted(stored) == sorted(emulator_ids(server))
    assert timedelta(0) <= later.started_at - earlier.finished_at


def test_workers_reconnect_after_redis_restarts_and_a_lost_message_is_sent_again(
    db: AppDatabase,
    workers: Workers,
    queue: JobQueue,
    emulator: EmulatorServer,
    redis_server: RedisServer,
) -> None:
    workers.start(2)
    workspace = db.create_workspace("acme")
    connection = connect(db, workspace.id, emulator, KEY)
    lost = db.enqueue_job(workspace.id, "sync", {"streams": ["lists"]}, connection_id=connection)
    queue.enqueue(lost.id)
    redis_server.restart()  # everything Redis held is gone, the message too if not yet taken
    fresh = db.enqueue_job(
        workspace.id,
        "privacy_access",
        {"subjects": ["nobody@example.invalid"]},
        connection_id=connection,
    )
    queue.enqueue(fresh.id)  # sent after the restart: the workers must have reconnected

    assert wait_for(db, fresh.id).state == "succeeded"
    assert wait_for(db, lost.id).state == "succeeded"
