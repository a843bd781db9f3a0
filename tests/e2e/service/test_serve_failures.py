"""Jobs that fail for a reason that will not heal, through `kbridge serve` (issue #20, "Faults").

A key Klaviyo refuses (revoked after it was connected) and a key without the
scope a job needs: each job ends ``failed`` after one attempt, with one line
saying what to do, as ``kbridge jobs show`` tells it. The same classification
under the in-process service is in tests/integration/service/test_worker.py;
these run the console script, its worker thread and the CLI against it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kbridge.connections import Sender, generate_master_key
from kbridge.emulator import EmulatorConfig, EmulatorServer
from kbridge.service.appdb import AppDatabase
from kbridge.service.connection_store import SqlConnectionStore
from kbridge.service.db import database_url
from kbridge.testing.plugin import http_client_for

from .test_serve import connect, kbridge, new_token, serving, wait_finished

pytestmark = pytest.mark.e2e

#: a key of the right shape that the emulator does not know: one revoked since
REFUSED_KEY = "pk_" + "0" * 34
MASTER_KEY = generate_master_key()


@pytest.fixture(scope="module")
def account() -> Iterator[EmulatorServer]:
    config = EmulatorConfig(seed=44, profiles=20, events=50, rate_limit_factor=None)
    with EmulatorServer(config) as server:
        yield server


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KBRIDGE_", "KLAVIYO_"))}
    return {**clean, "NO_COLOR": "1", "COLUMNS": "200", "KBRIDGE_HOME": str(tmp_path / "home"),
            "KBRIDGE_MASTER_KEY": MASTER_KEY.hex()}  # fmt: skip


def start_sync(remote: dict[str, str], connection: str) -> str:
    run = kbridge(remote, "jobs", "start", "sync", "--connection", connection,
                  "--param", 'streams=["profiles"]', "-o", "json")  # fmt: skip
    assert run.returncode == 0, run.stderr
    job_id: str = json.loads(run.stdout)["id"]
    return job_id


def events_of(env: dict[str, str], job_id: str) -> list[str]:
    db = AppDatabase.open(database_url(Path(env["KBRIDGE_HOME"])))
    try:
        job = db.job_by_id(job_id)
        assert job is not None
        return [e.event for e in db.job_events(job.workspace_id, job_id)]
    finally:
        db.close()


def test_a_revoked_key_fails_the_job_once_with_one_line_saying_to_connect_again(
    account: EmulatorServer, env: dict[str, str]
) -> None:
    token = new_token(env, "acme")
    db = AppDatabase.open(database_url(Path(env["KBRIDGE_HOME"])))
    try:
        # connected while the key worked (the API verifies a key, so it is stored directly),
        # revoked since: Klaviyo now answers 401
        store = SqlConnectionStore(db.engine, db.workspace("acme").id, master_key=MASTER_KEY)
        with http_client_for(account) as http:
            account_id = http.get("/api/accounts").json()["data"][0]["id"]
        connection = store.upsert(
            "shop", kind="api_key", base_url=account.base_url, account_id=account_id,
            account_name=None, sender=Sender(), capabilities=(), scopes=(),
            secrets={"api_key": REFUSED_KEY}, rate_limits="off", warehouse=None,
        ).id  # fmt: skip
    finally:
        db.close()

    with serving(env) as url:
        remote = {**env, "KBRIDGE_SERVER": url, "KBRIDGE_TOKEN": token}
        job_id = start_sync(remote, connection)
        job = wait_finished(remote, job_id)
        shown = kbridge(remote, "jobs", "show", job_id)

    assert job["state"] == "failed", job
    assert events_of(env, job_id) == ["queued", "claimed", "failed"]  # one attempt, no retry
    error = job["error"]
    assert "\n" not in error
    assert "shop" in error
    assert "connect it again" in error
    assert REFUSED_KEY not in error
    assert REFUSED_KEY not in shown.stdout + shown.stderr
    assert "Traceback" not in shown.stdout + shown.stderr


def test_a_key_without_the_scope_a_sync_needs_fails_once_naming_what_to_grant(
    account: EmulatorServer, env: dict[str, str]
) -> None:
    token = new_token(env, "acme")
    with http_client_for(account) as http:
        minted = http.post("/_emulator/keys", json={"scopes": ["accounts:read"]})
    assert minted.status_code == 201, minted.text
    narrow_key = minted.json()["key"]

    with serving(env) as url:
        remote = {**env, "KBRIDGE_SERVER": url, "KBRIDGE_TOKEN": token}
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=60.0) as api:
            shop = connect(api, "shop", narrow_key, account.base_url)
        job_id = start_sync(remote, shop["id"])
        job = wait_finished(remote, job_id)

    assert job["state"] == "failed", job
    assert events_of(env, job_id) == ["queued", "claimed", "failed"]
    error = job["error"]
    assert "\n" not in error
    assert "profiles:read" in error
    assert narrow_key not in error
