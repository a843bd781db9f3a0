"""A sync whose DuckDB warehouse file another process holds open (a CLI ``kbridge sync``
beside the service, say) waits for it, saying why, and runs once the file is free."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from kbridge.connections import generate_master_key
from kbridge.emulator.server import EmulatorServer
from kbridge.service.appdb import AppDatabase
from kbridge.service.db import database_url
from kbridge.service.jobs import WorkerSettings, default_warehouse_url
from kbridge.service.worker import InProcessService, start_in_process
from kbridge.warehouse import duckdb_path, open_warehouse

from .jobhelp import connect, emulator_ids, wait_for, warehouse_ids

pytestmark = pytest.mark.integration

KEY = generate_master_key()

#: hold the DuckDB file open for writing until a line arrives on stdin: a plain DuckDB
#: client, and kbridge's own warehouse (as a CLI ``kbridge sync`` holds it)
_HOLDERS = {
    "duckdb": "import duckdb; con = duckdb.connect(sys.argv[1])",
    "kbridge": "from kbridge.warehouse import open_warehouse; "
    "con = open_warehouse('duckdb:///' + sys.argv[1])",
}
_HOLD = "import sys\n{open}\nprint('held', flush=True)\nsys.stdin.readline()\ncon.close()\n"


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
        retry_backoff=timedelta(milliseconds=50),
        busy_retry=timedelta(milliseconds=50),
    )
    handle = start_in_process(db, settings, tick_every=timedelta(milliseconds=200))
    try:
        yield handle
    finally:
        handle.stop()


@pytest.mark.parametrize("holder_kind", sorted(_HOLDERS))
def test_a_sync_waits_for_a_warehouse_another_process_holds_then_syncs(
    db: AppDatabase,
    service: InProcessService,
    emulator: EmulatorServer,
    tmp_path: Path,
    holder_kind: str,
) -> None:
    workspace = db.create_workspace("acme")
    connection = connect(db, workspace.id, emulator, KEY)
    url = default_warehouse_url(tmp_path, workspace.id, "shop")
    path = duckdb_path(url)
    assert path is not None
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    open_warehouse(url).close()  # the file exists (mode 0600) before the other process opens it
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD.format(open=_HOLDERS[holder_kind]), path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        job = db.enqueue_job(
            workspace.id, "sync", {"streams": ["profiles"]}, connection_id=connection
        )
        service.queue(job.id)

        # more tries than the job has attempts: waiting for the file spends none of them
        def waited_long(j: object) -> bool:
            events = db.job_events(workspace.id, job.id)
            return sum(e.event == "postponed" for e in events) > job.max_attempts

        waiting = wait_for(db, job.id, until=lambda j: j.state == "failed" or waited_long(j))
        assert waiting.state in ("queued", "running"), waiting.last_error
        assert waiting.attempts < waiting.max_attempts
        line = waiting.last_error
        assert line is not None
        assert "\n" not in line
        assert "Traceback" not in line
        assert line.startswith("waiting")
        assert path in line
        if holder_kind == "duckdb":
            assert f"PID {holder.pid}" in line
        else:  # kbridge's own lock file tells no process id
            assert "another kbridge process has it open" in line
    finally:
        if holder.stdin is not None:
            holder.stdin.write("done\n")
            holder.stdin.close()
        holder.wait(timeout=60)
        if holder.stdout is not None:
            holder.stdout.close()

    done = wait_for(db, job.id)

    assert done.state == "succeeded", done.last_error
    assert done.last_error is None  # the wait is over: nothing to show beside the success
    assert sorted(warehouse_ids(url, "profiles")) == sorted(emulator_ids(emulator))
