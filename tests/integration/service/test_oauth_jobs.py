"""OAuth connections in the service: the worker runs their jobs, and refreshes of one
connection are serialised across processes by a lock row in the app database (Klaviyo
rotates refresh tokens: two processes refreshing with one token leave one with a spent one)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from kbridge.connections import Sender
from kbridge.core import ManualClock
from kbridge.emulator.server import EmulatorServer
from kbridge.service.appdb import AppDatabase
from kbridge.service.connection_store import DEFAULT_REFRESH_LOCK_TTL, SqlConnectionStore
from kbridge.service.db import database_url
from kbridge.service.jobs import WorkerSettings
from kbridge.service.worker import start_in_process
from tests.integration.web.conftest import Api, running_api

from .jobhelp import emulator_ids, wait_for

pytestmark = pytest.mark.integration

CALLBACK = "/api/v1/connections/oauth/callback"
REFRESHER = str(Path(__file__).with_name("oauth_refresher.py"))
AT = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def server(emulator_factory: Callable[..., EmulatorServer]) -> EmulatorServer:
    """An emulator of this test alone: its clock is moved to expire the access token."""
    return emulator_factory()


def connect_by_oauth(api: Api, name: str = "app") -> str:
    """Connect through the REST API's OAuth flow, as a user's browser does; the id."""
    app = httpx.post(
        f"{api.emulator.base_url}/_emulator/oauth-clients",
        json={"redirect_uris": [api.base_url + CALLBACK]},
    ).json()
    started = api.a.post(
        "/api/v1/connections/oauth/start",
        json={
            "name": name,
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "base_url": api.emulator.base_url,
            "capabilities": ["sync"],
            "rate_limits": "off",
        },
    )
    assert started.status_code == 200, started.text
    consent = httpx.get(started.json()["authorize_url"], follow_redirects=False, timeout=10.0)
    callback = httpx.get(consent.headers["location"], timeout=30.0)
    assert callback.status_code == 201, callback.text
    assert callback.json()["kind"] == "oauth"
    made: str = callback.json()["id"]
    return made


def expire_access_tokens(server: EmulatorServer) -> None:
    """The emulator's clock passes the access token's life: the next call meets a 401."""
    httpx.post(
        f"{server.base_url}/_emulator/clock", json={"advance_seconds": 3700}
    ).raise_for_status()


def store_of(api: Api) -> SqlConnectionStore:
    store: SqlConnectionStore = api.app.state.kbridge.store(api.workspace_a)
    return store


@pytest.fixture
def api(tmp_path: Path, server: EmulatorServer) -> Iterator[Api]:
    data_dir = tmp_path / "data"
    with running_api(database_url(data_dir), data_dir, server, ManualClock(AT)) as running:
        yield running


def test_a_sync_of_an_oauth_connection_runs_to_succeeded_refreshing_the_expired_token(
    api: Api, server: EmulatorServer, tmp_path: Path
) -> None:
    connection = connect_by_oauth(api)
    before = store_of(api).secrets("app")
    expire_access_tokens(server)
    settings = WorkerSettings(
        data_dir=api.data_dir,
        master_key=api.app.state.kbridge.master_key,
        lease=timedelta(seconds=6),
        retry_backoff=timedelta(milliseconds=100),
    )
    service = start_in_process(api.appdb, settings, tick_every=timedelta(milliseconds=200))
    try:
        reply = api.a.post(
            "/api/v1/jobs",
            json={"kind": "sync", "connection": connection, "params": {"streams": ["profiles"]}},
        )
        assert reply.status_code == 202, reply.text
        service.queue(reply.json()["id"])
        done = wait_for(api.appdb, reply.json()["id"])
    finally:
        service.stop()

    assert done.state == "succeeded", done.last_error
    assert done.attempts == 1
    assert done.result is not None
    assert done.result["streams"] == {"profiles": {"records": len(emulator_ids(server))}}
    after = store_of(api).secrets("app")
    # refreshed on the 401, and the rotated tokens were sealed in the app database
    assert after["refresh_token"] != before["refresh_token"]
    assert after["access_token"] != before["access_token"]


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, REFRESHER, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[3],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])},
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_api(
    request: pytest.FixtureRequest, tmp_path: Path, server: EmulatorServer
) -> Iterator[Api]:
    data_dir = tmp_path / "data"
    url = (
        database_url(data_dir)
        if request.param == "sqlite"
        else str(request.getfixturevalue("postgres_url"))
    )
    with running_api(url, data_dir, server, ManualClock(AT)) as running:
        yield running


def test_two_processes_refreshing_one_expired_grant_refresh_once_and_both_work(
    shared_api: Api, server: EmulatorServer
) -> None:
    api = shared_api
    connect_by_oauth(api)
    url = api.appdb.engine.url.render_as_string(hide_password=False)
    args = ("use", url, api.workspace_a, api.app.state.kbridge.master_key.hex(), "app")
    for _ in range(3):
        before = store_of(api).secrets("app")
        expire_access_tokens(server)
        procs = [_spawn(*args) for _ in range(2)]
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready", proc.stderr
        for proc in procs:  # both go at once, each holding the expired access token
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        refreshes = 0
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            refreshes += int(out.split()[-1])
        assert refreshes == 1  # the second found the first's rotated tokens
        after = store_of(api).secrets("app")
        assert after["refresh_token"] != before["refresh_token"]


KEY = bytes(range(32))


@pytest.fixture
def lock_store(appdb: AppDatabase) -> tuple[AppDatabase, str]:
    """A connection in the app database (the lock needs only its row, not a live grant)."""
    workspace = appdb.create_workspace("acme")
    SqlConnectionStore(appdb.engine, workspace.id, master_key=KEY).upsert(
        "app",
        kind="api_key",
        base_url="http://127.0.0.1:9",
        account_id="A1",
        account_name=None,
        sender=Sender(),
        capabilities=(),
        scopes=(),
        secrets={"api_key": "pk_" + "1" * 34},
    )
    return appdb, workspace.id


def test_the_refresh_lock_is_one_holders_and_a_late_release_frees_only_its_own(
    lock_store: tuple[AppDatabase, str], clock: ManualClock
) -> None:
    appdb, workspace = lock_store
    first, second = (
        SqlConnectionStore(appdb.engine, workspace, master_key=KEY, clock=clock) for _ in range(2)
    )
    held = first.try_refresh_lock("app")
    assert held is not None
    assert second.try_refresh_lock("app") is None
    clock.advance(DEFAULT_REFRESH_LOCK_TTL.total_seconds() - 1)
    assert second.try_refresh_lock("app") is None
    clock.advance(2)
    taken = second.try_refresh_lock("app")  # the first holder went silent: taken over
    assert taken is not None
    held.release()  # the first holder wakes up late: the lock stays the second's
    assert first.try_refresh_lock("app") is None
    taken.release()
    again = first.try_refresh_lock("app")
    assert again is not None
    again.release()


def test_a_lock_left_by_a_killed_holder_is_taken_over_after_its_expiry(
    lock_store: tuple[AppDatabase, str], clock: ManualClock
) -> None:
    appdb, workspace = lock_store
    url = appdb.engine.url.render_as_string(hide_password=False)
    holder = _spawn("hold", url, workspace, KEY.hex(), "app", clock.now().isoformat())
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held", holder.stderr
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate(timeout=30)
    store = SqlConnectionStore(appdb.engine, workspace, master_key=KEY, clock=clock)
    assert store.try_refresh_lock("app") is None  # dead, but not yet known to be
    clock.advance(DEFAULT_REFRESH_LOCK_TTL.total_seconds() + 1)
    taken = store.try_refresh_lock("app")
    assert taken is not None
    taken.release()
