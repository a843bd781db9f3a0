"""`kbridge serve` tried as a new user would, and two of them over one app database.

Real processes throughout: the console script serves the API, its scheduler
and worker thread; the CLI makes the workspace and token and drives jobs and
schedules; the emulator serves two accounts over loopback.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from kbridge.emulator import EmulatorConfig, EmulatorServer
from kbridge.service.appdb import AppDatabase
from kbridge.service.db import database_url
from kbridge.testing.plugin import http_client_for

pytestmark = pytest.mark.e2e

KBRIDGE = str(Path(sys.executable).with_name("kbridge"))
PROFILES = 25


@pytest.fixture(scope="module")
def two_accounts() -> Iterator[EmulatorServer]:
    config = EmulatorConfig(seed=41, profiles=PROFILES, events=150, accounts=2,
                            rate_limit_factor=None)  # fmt: skip
    with EmulatorServer(config) as server:
        yield server


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KBRIDGE_", "KLAVIYO_"))}
    return {**clean, "NO_COLOR": "1", "COLUMNS": "200", "KBRIDGE_HOME": str(tmp_path / "home")}


def kbridge(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KBRIDGE, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


@contextmanager
def serving(env: dict[str, str], *args: str) -> Iterator[str]:
    """``kbridge serve --port 0 ARGS`` running; yields its base URL, then stops it with
    SIGTERM (as a service manager does) and checks it ended cleanly."""
    proc = subprocess.Popen(
        [KBRIDGE, "serve", "--port", "0", *args],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    lines: list[str] = []
    found = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "/api/v1" in line:
                found.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert found.wait(60), "".join(lines)
        match = re.search(r"(http://127\.0\.0\.1:\d+)/api/v1", "".join(lines))
        assert match, "".join(lines)
        url = match.group(1)
        for _ in range(100):  # the socket is bound before the line; uvicorn may lag it
            try:
                httpx.get(f"{url}/api/v1/openapi.json", timeout=5.0)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        finally:
            reader.join(timeout=10)
            proc.stderr.close()
    assert code == 0, "".join(lines)
    assert lines[-1].endswith(": stopped\n"), "".join(lines)
    assert "Traceback" not in "".join(lines), "".join(lines)


def new_token(env: dict[str, str], workspace: str) -> str:
    added = kbridge(env, "workspaces", "add", workspace)
    assert added.returncode == 0, added.stderr
    made = kbridge(env, "tokens", "add", "--workspace", workspace)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


def connect(api: httpx.Client, name: str, key: str, base_url: str) -> dict[str, Any]:
    reply = api.post("/api/v1/connections", json={"name": name, "api_key": key,
                                                  "base_url": base_url})  # fmt: skip
    assert reply.status_code == 201, reply.text
    created: dict[str, Any] = reply.json()
    return created


def wait_finished(env: dict[str, str], job_id: str, within: float = 180.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        shown = kbridge(env, "jobs", "show", job_id, "-o", "json")
        assert shown.returncode == 0, shown.stderr
        job: dict[str, Any] = json.loads(shown.stdout)
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.5)


def profile_ids(server: EmulatorServer, account: int) -> set[str]:
    with http_client_for(server, key=server.api_key_of(account)) as http:
        reply = http.get("/api/profiles", params={"page[size]": "100"})
    return {p["id"] for p in reply.json()["data"]}


def test_a_new_user_serves_connects_two_accounts_schedules_and_watches_syncs_finish(
    two_accounts: EmulatorServer, env: dict[str, str]
) -> None:
    token = new_token(env, "acme")
    with serving(env) as url:
        remote = {**env, "KBRIDGE_SERVER": url, "KBRIDGE_TOKEN": token}
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=60.0) as api:
            shops = [
                connect(api, f"shop{i}", two_accounts.api_key_of(i), two_accounts.base_url)
                for i in range(2)
            ]
        assert shops[0]["account_id"] != shops[1]["account_id"]
        for shop in shops:
            added = kbridge(remote, "schedules", "add", "--connection", shop["id"],
                            "--daily-at", "03:00", "--timezone", "Europe/Berlin")  # fmt: skip
            assert added.returncode == 0, added.stderr
        listed = json.loads(kbridge(remote, "schedules", "list", "-o", "json").stdout)
        assert sorted(s["connection"] for s in listed) == sorted(s["id"] for s in shops)

        started = {}
        for shop in shops:
            run = kbridge(remote, "jobs", "start", "sync", "--connection", shop["id"],
                          "--param", 'streams=["profiles","lists"]', "-o", "json")  # fmt: skip
            assert run.returncode == 0, run.stderr
            started[shop["id"]] = json.loads(run.stdout)["id"]
        finished = {cid: wait_finished(remote, jid) for cid, jid in started.items()}

    for i, shop in enumerate(shops):
        job = finished[shop["id"]]
        assert job["state"] == "succeeded", job["error"]
        assert job["result"]["streams"]["profiles"]["records"] == PROFILES
        # each account's rows in its own warehouse, equal to the account's
        warehouse = Path(shop["warehouse"].removeprefix("duckdb://"))
        with duckdb.connect(str(warehouse), read_only=True) as con:
            ids = {row[0] for row in con.execute("SELECT id FROM profiles").fetchall()}
        assert ids == profile_ids(two_accounts, i)


def test_a_schedule_missed_while_down_fires_once_with_two_serve_processes(
    two_accounts: EmulatorServer, env: dict[str, str]
) -> None:
    token = new_token(env, "acme")
    home = Path(env["KBRIDGE_HOME"])
    headers = {"Authorization": f"Bearer {token}"}
    with serving(env) as url, httpx.Client(base_url=url, timeout=60.0, headers=headers) as api:
        shop = connect(api, "shop", two_accounts.api_key, two_accounts.base_url)
    # everything was down for three days: the schedule's due time passed three times
    db = AppDatabase.open(database_url(home))
    try:
        workspace = db.workspace("acme")
        missed = datetime.now(UTC) - timedelta(days=3)
        schedule = db.create_schedule(workspace.id, shop["id"], "sync", daily_at="03:00",
                                      params={"streams": ["lists"]}, next_due=missed)  # fmt: skip
    finally:
        db.close()

    remote = {**env, "KBRIDGE_TOKEN": token}
    with serving(env) as first, serving(env):
        remote["KBRIDGE_SERVER"] = first
        deadline = time.monotonic() + 120
        while True:
            jobs = json.loads(kbridge(remote, "jobs", "list", "-o", "json").stdout)
            if jobs and all(j["state"] == "succeeded" for j in jobs):
                break
            assert time.monotonic() < deadline, jobs
            time.sleep(0.5)
        time.sleep(12)  # two more scheduler ticks of both processes (every 5 s)
        jobs = json.loads(kbridge(remote, "jobs", "list", "-o", "json").stdout)

    assert len(jobs) == 1, jobs  # once, not once per missed day nor once per process
    db = AppDatabase.open(database_url(home))
    try:
        fires = db.schedule_fires(schedule.id)
        after = next(s for s in db.schedules(workspace.id) if s.id == schedule.id)
    finally:
        db.close()
    assert [job_id for _, job_id in fires] == [jobs[0]["id"]]
    assert after.next_due is not None
    assert after.next_due > datetime.now(UTC)
