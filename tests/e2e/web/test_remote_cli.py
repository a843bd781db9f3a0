"""`kbridge jobs …` and `kbridge schedules …` against a running API, as a user types them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kbridge.core import ManualClock
from kbridge.emulator.server import EmulatorServer
from kbridge.service.db import database_url
from tests.integration.web.conftest import Api, running_api

pytestmark = pytest.mark.e2e

KBRIDGE = str(Path(sys.executable).with_name("kbridge"))


@pytest.fixture
def api(tmp_path: Path, emulator: EmulatorServer) -> Iterator[Api]:
    data_dir = tmp_path / "data"
    clock = ManualClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    with running_api(database_url(data_dir), data_dir, emulator, clock) as running:
        yield running


@pytest.fixture
def env(tmp_path: Path, api: Api) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KBRIDGE_", "KLAVIYO_"))}
    token = str(api.a.headers["Authorization"]).removeprefix("Bearer ")
    return {
        **clean,
        "NO_COLOR": "1",
        "COLUMNS": "200",
        "KBRIDGE_HOME": str(tmp_path / "home"),
        "KBRIDGE_SERVER": api.base_url,
        "KBRIDGE_TOKEN": token,
    }


def kbridge(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KBRIDGE, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def ok_json(env: dict[str, str], *args: str) -> object:
    done = kbridge(env, *args, "-o", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def one_line_error(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode == 1, done.stdout
    assert done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr
    for needle in needles:
        assert needle in done.stderr, done.stderr


def test_a_job_is_started_listed_shown_cancelled_and_retried(api: Api, env: dict[str, str]) -> None:
    shop = api.connect(api.a)
    started = ok_json(env, "jobs", "start", "sync", "--connection", shop["id"],
                      "--param", 'streams=["profiles"]')  # fmt: skip
    assert isinstance(started, dict)
    job_id = started["id"]
    assert started["state"] == "queued"
    assert api.enqueued == [job_id]  # the service woke a worker for it

    listed = ok_json(env, "jobs", "list")
    assert [j["id"] for j in listed] == [job_id]  # type: ignore[union-attr]
    shown = ok_json(env, "jobs", "show", job_id, "--events")
    assert isinstance(shown, dict)
    assert shown["params"]["streams"] == ["profiles"]
    assert shown["events"][0]["event"] == "queued"

    cancelled = ok_json(env, "jobs", "cancel", job_id)
    assert cancelled["state"] == "cancelled"  # type: ignore[index]
    assert ok_json(env, "jobs", "list", "--state", "queued") == []
    retried = ok_json(env, "jobs", "retry", job_id)
    assert retried["state"] == "queued"  # type: ignore[index]

    table = kbridge(env, "jobs", "list", "-o", "table")
    assert table.returncode == 0, table.stderr
    assert job_id in table.stdout
    assert "queued" in table.stdout


def test_a_schedule_is_added_listed_and_removed(api: Api, env: dict[str, str]) -> None:
    shop = api.connect(api.a)
    added = ok_json(env, "schedules", "add", "--connection", shop["id"], "--daily-at", "02:30",
                    "--timezone", "Europe/Berlin")  # fmt: skip
    assert isinstance(added, dict)
    assert (added["daily_at"], added["timezone"], added["kind"]) == (
        "02:30",
        "Europe/Berlin",
        "sync",
    )
    cron = ok_json(env, "schedules", "add", "--connection", shop["id"], "--cron", "0 */6 * * *")
    listed = ok_json(env, "schedules", "list")
    assert {s["id"] for s in listed} == {added["id"], cron["id"]}  # type: ignore[index,union-attr]

    removed = kbridge(env, "schedules", "rm", added["id"])
    assert removed.returncode == 0, removed.stderr
    assert [s["id"] for s in ok_json(env, "schedules", "list")] == [cron["id"]]  # type: ignore[index,union-attr]


def test_mistakes_are_one_line_naming_what_to_fix(api: Api, env: dict[str, str]) -> None:
    shop = api.connect(api.a)
    # the service's own 422, naming the field
    one_line_error(
        kbridge(env, "schedules", "add", "--connection", shop["id"], "--daily-at", "25:00"),
        "daily_at",
        "HTTP 422",
    )
    one_line_error(kbridge(env, "jobs", "start", "nap", "--connection", shop["id"]), "kind")
    one_line_error(kbridge(env, "jobs", "show", "no-such-job"), "HTTP 404")
    one_line_error(kbridge(env, "jobs", "show", "../connections"), "HTTP 404")
    # before any request
    one_line_error(kbridge(env, "schedules", "add", "--connection", shop["id"]), "--daily-at")
    one_line_error(kbridge(env, "jobs", "list", "--state", "done"), "--state")
    one_line_error(kbridge(env, "jobs", "start", "sync", "--connection", "x", "--param", "p"),
                   "KEY=VALUE")  # fmt: skip
    # the token and the server
    one_line_error(kbridge({**env, "KBRIDGE_TOKEN": "kbt_wrong"}, "jobs", "list"), "token")
    no_token = {k: v for k, v in env.items() if k != "KBRIDGE_TOKEN"}
    one_line_error(kbridge(no_token, "jobs", "list"), "KBRIDGE_TOKEN")
    one_line_error(kbridge({**env, "KBRIDGE_SERVER": "http://127.0.0.1:9"}, "jobs", "list"),
                   "cannot reach the service")  # fmt: skip
    one_line_error(kbridge({**env, "KBRIDGE_SERVER": "127.0.0.1:8080"}, "jobs", "list"), "--server")


def test_another_workspaces_job_is_not_found(api: Api, env: dict[str, str]) -> None:
    theirs = api.connect(api.b, "theirs")
    made = api.b.post("/api/v1/jobs", json={"kind": "sync", "connection": theirs["id"]})
    assert made.status_code == 202, made.text
    one_line_error(kbridge(env, "jobs", "cancel", made.json()["id"]), "HTTP 404")
    assert ok_json(env, "jobs", "list") == []
