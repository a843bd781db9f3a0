"""Two syncs into one PostgreSQL database: the second refuses with one line while the first
runs (no membership row lost), and creating the schema from several processes at once works.

Real processes and a real PostgreSQL (the ``postgres_url`` fixture)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from typer.testing import CliRunner

from kbridge import sync
from kbridge.cli.app import app
from kbridge.emulator.config import EmulatorConfig
from kbridge.emulator.server import EmulatorServer
from kbridge.sync import get_stream
from kbridge.testing.plugin import http_client_for
from kbridge.warehouse import DestinationBusyError, open_warehouse
from kbridge.warehouse._sql import create_table
from kbridge.warehouse.duckdb import DuckDBWarehouse
from kbridge.warehouse.postgres import _TYPES
from kbridge.warehouse.schema import SYSTEM_TABLES

from .conftest import SMALL, api_all, client_for

pytestmark = pytest.mark.integration

ENV = {**os.environ, "KLAVIYO_API_KEY": ""}
#: slow enough answers that the first run is still reading when the second starts
CONFIG = EmulatorConfig(
    seed=21, profiles=1500, events=0, rate_limit_factor=None, faults="latency=150ms"
)


def big_list(http: httpx.Client, name: str, members: int) -> str:
    """A list holding the account's first ``members`` profiles (several pages of them)."""
    created = http.post("/api/lists", json={"data": {"type": "list", "attributes": {"name": name}}})
    assert created.status_code == 201, created.text
    list_id = str(created.json()["data"]["id"])
    ids = [p["id"] for p in api_all(http, "/api/profiles", {"fields[profile]": "email"})]
    assert len(ids) >= members
    for start in range(0, members, 1000):
        chunk = [{"type": "profile", "id": i} for i in ids[start : min(start + 1000, members)]]
        added = http.post(f"/api/lists/{list_id}/relationships/profiles", json={"data": chunk})
        assert added.status_code == 204, added.text
    return list_id


def account_memberships(http: httpx.Client) -> set[tuple[str, str]]:
    """Every (list, profile) pair the account holds, read with a plain HTTP client."""
    out: set[tuple[str, str]] = set()
    for lst in api_all(http, "/api/lists"):
        members = api_all(http, f"/api/lists/{lst['id']}/profiles", {"page[size]": 100})
        out |= {(lst["id"], m["id"]) for m in members}
    return out


def stored_memberships(url: str) -> set[tuple[str, str]]:
    wh = open_warehouse(url)
    try:
        return {
            (str(a), str(b))
            for a, b in wh.query("SELECT list_id, profile_id FROM list_memberships")
        }
    finally:
        wh.close()


@pytest.fixture(scope="module")
def slow_server() -> Iterator[EmulatorServer]:
    with EmulatorServer(CONFIG) as s:
        with http_client_for(s) as http:
            big_list(http, "Everyone", 1500)
        yield s


def sync_command(server: EmulatorServer, target: str, streams: str) -> list[str]:
    return [sys.executable, "-c", "from kbridge.cli import main; main()", "sync",
            "--api-key", server.api_key, "--base-url", server.base_url, "--to", target,
            "--streams", streams, "--json", "--rate-limits", "off"]  # fmt: skip


def served(http: httpx.Client, operation: str) -> int:
    ops = http.get("/_emulator/stats").json()["operations"]
    return int(ops.get(operation, {}).get("requests", 0))


def test_a_second_sync_into_the_same_database_refuses_while_the_first_runs(
    slow_server: EmulatorServer, postgres_url: str
) -> None:
    with http_client_for(slow_server) as http:
        expected = account_memberships(http)
        before = served(http, "get_profiles_for_list")
        first = subprocess.Popen(
            sync_command(slow_server, postgres_url, "list_memberships"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=ENV,
        )
        try:
            # the first run is reading members: it has its account and holds its streams
            while served(http, "get_profiles_for_list") < before + 2:
                assert first.poll() is None, first.stderr.read().decode() if first.stderr else ""
            args = sync_command(slow_server, postgres_url, "lists,list_memberships")[3:]
            second = CliRunner().invoke(app, args, env={"KLAVIYO_API_KEY": "", "COLUMNS": "300"})
            still_running = first.poll() is None
        finally:
            _, err = first.communicate(timeout=120)
    assert second.exit_code != 0, second.stdout
    assert still_running, "the first run ended before the second started: nothing was proven"
    lines = [line for line in second.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, second.stderr
    assert "another kbridge sync" in lines[0]
    assert "list_memberships" in lines[0]
    assert "Traceback" not in second.stderr
    assert first.returncode == 0, err.decode()[-2000:]
    assert stored_memberships(postgres_url) == expected


def test_a_run_killed_while_holding_its_streams_does_not_block_the_next(
    slow_server: EmulatorServer, postgres_url: str
) -> None:
    """The locks live on the killed process's connection: the server lets them go."""
    with http_client_for(slow_server) as http:
        expected = account_memberships(http)
        before = served(http, "get_profiles_for_list")
        proc = subprocess.Popen(
            sync_command(slow_server, postgres_url, "list_memberships"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=ENV,
        )
        try:
            while served(http, "get_profiles_for_list") < before + 2:
                assert proc.poll() is None, "the sync ended before it could be killed"
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait()
    command = sync_command(slow_server, postgres_url, "list_memberships")
    done = subprocess.run(command, capture_output=True, env=ENV, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert stored_memberships(postgres_url) == expected


def _migrating(url: str, errors: list[BaseException]) -> None:
    try:
        wh = open_warehouse(url)
        try:
            wh.migrate(get_stream("list_memberships").tables)
        finally:
            wh.close()
    except BaseException as exc:
        errors.append(exc)


def _waiting_backends(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as con:
        row = con.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
    return int(row[0]) if row else 0


def test_creating_the_schema_while_another_process_creates_it_succeeds(
    postgres_url: str,
) -> None:
    """Another creator holds the same tables uncommitted: kbridge waits for it, then
    finds them made (``CREATE TABLE IF NOT EXISTS`` alone fails with UniqueViolation)."""
    other = psycopg.connect(postgres_url)
    try:
        for t in (*SYSTEM_TABLES, *get_stream("list_memberships").tables):
            other.execute(create_table(t, _TYPES).encode())
        errors: list[BaseException] = []
        worker = threading.Thread(target=_migrating, args=(postgres_url, errors))
        worker.start()
        while _waiting_backends(postgres_url) == 0:
            assert worker.is_alive(), errors
        other.commit()
        worker.join(timeout=60)
    finally:
        other.close()
    assert not worker.is_alive()
    assert errors == []
    assert stored_memberships(postgres_url) == set()


SCHEMA_SCRIPT = """
import sys, time
from pathlib import Path
from kbridge.sync import STREAMS
from kbridge.warehouse import DestinationBusyError, open_warehouse
import kbridge.warehouse.postgres  # imported before the start, so all begin at once
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.001)
wh = open_warehouse(sys.argv[1])
wh.migrate([t for s in STREAMS for t in s.tables])
wh.close()
"""


def test_processes_creating_the_schema_of_an_empty_database_at_once_all_succeed(
    postgres_url: str, tmp_path: Path
) -> None:
    for round_ in range(2):
        with psycopg.connect(postgres_url, autocommit=True) as con:
            con.execute("DROP SCHEMA public CASCADE")
            con.execute("CREATE SCHEMA public")
        go = tmp_path / f"go{round_}"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", SCHEMA_SCRIPT, postgres_url, str(go)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=ENV,
            )
            for _ in range(4)
        ]
        go.touch()
        outcomes: list[tuple[int, Any]] = []
        for p in procs:
            _, err = p.communicate(timeout=120)
            outcomes.append((p.returncode, err.decode()[-1500:]))
        assert [code for code, _ in outcomes] == [0] * len(procs), outcomes


class _Gate(DuckDBWarehouse):
    """A DuckDB warehouse whose first commit waits until the test opens the gate: a run is
    held mid-way, deterministically, while another starts."""

    def __init__(self) -> None:
        super().__init__(":memory:")
        self.gate = threading.Event()
        self.waiting = threading.Event()

    def commit(self, batch: Any) -> None:
        if not self.waiting.is_set():
            self.waiting.set()
            assert self.gate.wait(timeout=60)
        super().commit(batch)


def test_two_runs_sharing_one_warehouse_in_one_process_the_second_refuses() -> None:
    wh = _Gate()

    async def both(server: EmulatorServer) -> tuple[Any, BaseException | None]:
        async with client_for(server) as one, client_for(server) as two:
            first = asyncio.create_task(sync.run(one, wh, streams=["lists", "list_memberships"]))
            assert await asyncio.to_thread(wh.waiting.wait, 60)
            try:
                await sync.run(two, wh, streams=["list_memberships"])
                refused: BaseException | None = None
            except DestinationBusyError as exc:
                refused = exc
            wh.gate.set()
            return await first, refused

    try:
        with EmulatorServer(SMALL) as server, http_client_for(server) as http:
            result, refused = asyncio.run(both(server))
            expected = account_memberships(http)
        assert refused is not None, "the second run was not refused"
        assert "another kbridge sync is writing list_memberships" in str(refused)
        assert result.ok
        assert {
            (str(a), str(b))
            for a, b in wh.query("SELECT list_id, profile_id FROM list_memberships")
        } == expected
    finally:
        wh.close()
