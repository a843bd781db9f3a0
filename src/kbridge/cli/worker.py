"""``kbridge worker``: run the service's jobs from a Redis broker, on this machine or another.

Thin: read the environment (``KBRIDGE_HOME``, ``KBRIDGE_MASTER_KEY``), open
the app database, and run :mod:`kbridge.service.worker`'s actor in Dramatiq
worker threads until SIGTERM or Ctrl-C, with the recovery sweep that gives
a dead worker's jobs to the living. Service modules are imported inside the
command: ``kbridge --help`` stays fast.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from typing import Annotated, Any

import typer

from kbridge.cli.home import data_dir, master_key
from kbridge.cli.output import fail

__all__ = ["worker"]

DATABASE_ENV = "KBRIDGE_DATABASE"
BROKER_ENV = "KBRIDGE_BROKER"


def worker(
    database: Annotated[
        str | None,
        typer.Option(
            envvar=DATABASE_ENV,
            help="the app database (postgresql://…); default: app.sqlite3 in the data directory",
            show_default=False,
        ),
    ] = None,
    broker: Annotated[
        str | None,
        typer.Option(
            envvar=BROKER_ENV,
            help="the Redis broker the service sends jobs through (redis://host:6379/0)",
            show_default=False,
        ),
    ] = None,
    threads: Annotated[int, typer.Option(min=1, help="jobs run at once per process")] = 4,
    processes: Annotated[int, typer.Option(min=1, help="worker processes to start")] = 1,
    lease: Annotated[
        float,
        typer.Option(
            min=1.0,
            help="seconds a silent worker keeps its job before another may take it over",
        ),
    ] = 60.0,
) -> None:
    """Run the service's background jobs (syncs, privacy requests, publishing) from a broker."""
    if broker is None:
        fail(
            f"give --broker redis://HOST:6379/0 (or set {BROKER_ENV}); without a broker, "
            "`kbridge serve` runs its own worker"
        )
    if processes > 1:
        _run_children(processes, sys.argv[1:])
        return
    from kbridge.core import KbridgeError

    try:
        _run(database, broker, threads, timedelta(seconds=lease))
    except KbridgeError as exc:
        fail(str(exc))


def _run(database: str | None, broker_url: str, threads: int, lease: timedelta) -> None:
    from kbridge.service.appdb import AppDatabase
    from kbridge.service.broker import JobQueue, make_broker
    from kbridge.service.db import database_url
    from kbridge.service.jobs import WorkerSettings
    from kbridge.service.scheduler import Scheduler
    from kbridge.service.worker import JobRunner, consumer, register_actor

    env = os.environ
    home = data_dir(env)
    home.mkdir(parents=True, exist_ok=True)
    settings = WorkerSettings(
        data_dir=home,
        master_key=master_key(home, env),
        broker_url=broker_url,
        lease=lease,
        busy_retry=min(timedelta(seconds=15), lease / 2),
    )
    message_broker = make_broker(broker_url, heartbeat_timeout=lease)
    db = AppDatabase.open(database or database_url(home))
    stopping = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    queue = JobQueue(message_broker)
    runner = JobRunner(db, settings, queue)
    register_actor(message_broker, runner)
    pool = consumer(message_broker, threads, timeout_ms=500)
    pool.start()
    print(f"kbridge worker {os.getpid()} ready: {threads} threads", file=sys.stderr, flush=True)
    try:
        # the schedules are `kbridge serve`'s; a worker rescues jobs of workers that died
        # a job due five leases ago and still queued lost its message (Redis restarted)
        sweep = Scheduler(db, queue, fire_schedules=False, requeue_after=lease * 5)
        sweep.run(stopping, lease / 2)
    finally:
        runner.stop()
        pool.stop()
        db.close()


def _run_children(processes: int, args: list[str]) -> None:
    """Start ``processes`` single-process workers and wait; a signal is passed on to each."""
    rest = _without_processes(args)
    command = [sys.executable, "-c", "from kbridge.cli import main; main()", *rest]
    children = [subprocess.Popen([*command, "--processes", "1"]) for _ in range(processes)]  # noqa: S603

    def forward(signum: int, frame: Any) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = [child.wait() for child in children]
    if any(codes):
        raise SystemExit(max(codes))


def _without_processes(args: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg == "--processes":
            skip = True
            continue
        if arg.startswith("--processes="):
            continue
        out.append(arg)
    return out
