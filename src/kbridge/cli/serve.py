"""``kbridge serve``: the service in one process — REST API, scheduler and a worker.

On embedded defaults nothing else runs: the app database is ``app.sqlite3``
in the data directory and jobs go through an in-process broker to a worker
thread (the same actor ``kbridge worker`` runs). With ``--database
postgresql://…`` and ``--broker redis://…`` it is one of many machines: it
serves the API and fires the schedules, and runs a worker of its own only
when given ``--workers N``. Service modules are imported inside the
command: ``kbridge --help`` stays fast.
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import timedelta
from typing import Annotated

import typer

from kbridge.cli.home import data_dir, master_key
from kbridge.cli.output import fail

__all__ = ["serve"]

DATABASE_ENV = "KBRIDGE_DATABASE"
BROKER_ENV = "KBRIDGE_BROKER"


def serve(
    host: Annotated[str, typer.Option(help="the address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="the port to listen on")] = 8080,
    database: Annotated[
        str | None,
        typer.Option(
            envvar=DATABASE_ENV,
            help="the app database (postgresql://… or sqlite:///PATH); default: app.sqlite3 "
            "in the data directory",
            show_default=False,
        ),
    ] = None,
    broker: Annotated[
        str | None,
        typer.Option(
            envvar=BROKER_ENV,
            help="a Redis broker (redis://host:6379/0) shared with `kbridge worker` processes; "
            "default: in-process",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="jobs this process runs at once (default: 1 without a broker, 0 with one)",
            show_default=False,
        ),
    ] = None,
    lease: Annotated[
        float,
        typer.Option(
            min=1.0, help="seconds a silent worker keeps its job before another may take it"
        ),
    ] = 60.0,
) -> None:
    """Run the service: the REST API, schedules and background jobs for many accounts."""
    from kbridge.core import KbridgeError

    try:
        _run(host, port, database, broker, workers, timedelta(seconds=lease))
    except KbridgeError as exc:
        fail(str(exc))


def _run(
    host: str,
    port: int,
    database: str | None,
    broker_url: str | None,
    workers: int | None,
    lease: timedelta,
) -> None:
    import socket

    import uvicorn

    from kbridge.service.appdb import AppDatabase
    from kbridge.service.broker import is_redis_url
    from kbridge.service.db import database_url
    from kbridge.service.jobs import WorkerSettings
    from kbridge.service.ratebudgets import RedisRateBudgetReader
    from kbridge.service.worker import start_in_process
    from kbridge.web import create_app
    from kbridge.web.dashboard.overview import use_rate_budgets

    threads = workers if workers is not None else (0 if broker_url else 1)
    if broker_url is None and threads == 0:
        fail("--workers 0 needs --broker: without one, nothing else would run the jobs")
    # the port first: a taken port is one line before anything starts
    try:
        listener = socket.create_server((host, port))
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    env = os.environ
    home = data_dir(env)
    home.mkdir(parents=True, exist_ok=True)
    key = master_key(home, env)
    db = AppDatabase.open(database or database_url(home))
    settings = WorkerSettings(
        data_dir=home,
        master_key=key,
        broker_url=broker_url,
        lease=lease,
        busy_retry=min(timedelta(seconds=15), lease / 2),
    )
    service = start_in_process(db, settings, threads=max(threads, 1), run_worker=threads > 0)
    app = create_app(db, data_dir=home, master_key=key, on_enqueued=service.queue)
    # the dashboard reads the rate budgets where the workers keep them: Redis with a broker,
    # else this process's own (its worker threads are the only workers)
    reader: RedisRateBudgetReader | None = None
    if is_redis_url(broker_url):
        assert broker_url is not None
        reader = RedisRateBudgetReader(broker_url)
        use_rate_budgets(app, reader)
    else:
        use_rate_budgets(app, settings.rate_budgets)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    )
    where = f"http://{host}:{listener.getsockname()[1]}"
    runs = f"{threads} worker thread{'s' if threads != 1 else ''}" if threads else "no worker"
    print(
        f"kbridge serve {os.getpid()}: dashboard {where}/, API {where}/api/v1 "
        f"(docs {where}/api/v1/docs), {runs}, "
        f"broker {'redis' if broker_url else 'in-process'}",
        file=sys.stderr,
        flush=True,
    )
    # uvicorn stops on SIGTERM, then raises the signal again: end with the cleanup below,
    # as Ctrl-C does, rather than die under the default handler halfway through it
    signal.signal(signal.SIGTERM, _stopped)
    try:
        server.run(sockets=[listener])
    finally:
        # running jobs go back to the queue with no attempt spent; another process takes them
        service.stop()
        if reader is not None:
            reader.close()
        db.close()
        listener.close()
        print(f"kbridge serve {os.getpid()}: stopped", file=sys.stderr, flush=True)


def _stopped(signum: int, frame: object) -> None:
    raise SystemExit(0)
