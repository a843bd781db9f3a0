"""``kbridge privacy access|delete|log`` as a user runs them, against the emulator."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from kbridge.cli import privacy as privacy_cli
from kbridge.cli.app import app
from kbridge.emulator import EmulatorConfig, EmulatorServer
from kbridge.testing.plugin import http_client_for
from kbridge.warehouse import open_warehouse

pytestmark = pytest.mark.e2e

KBRIDGE = str(Path(sys.executable).with_name("kbridge"))
#: deletions finish on the next request, so the CLI's first check confirms them
CONFIG = EmulatorConfig(
    seed=17, profiles=40, events=200, rate_limit_factor=None, deletion_delay_seconds=0
)


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(CONFIG) as running:
        yield running


@pytest.fixture
def http(server: EmulatorServer) -> Iterator[httpx.Client]:
    with http_client_for(server) as client:
        yield client


@pytest.fixture
def env(server: EmulatorServer, tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KBRIDGE_", "KLAVIYO_"))}
    return {
        **clean,
        "NO_COLOR": "1",
        "COLUMNS": "200",
        "KBRIDGE_HOME": str(tmp_path / "home"),
        "KLAVIYO_BASE_URL": server.base_url,
        "KLAVIYO_API_KEY": server.api_key,
    }


def run(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KBRIDGE, "privacy", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=60,
        cwd=Path(env["KBRIDGE_HOME"]).parent,
    )


def ok_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def one_line_error(result: subprocess.CompletedProcess[str], text: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert text in result.stderr, result.stderr


def new_profile(http: httpx.Client, **attributes: Any) -> str:
    reply = http.post("/api/profiles", json={"data": {"type": "profile", "attributes": attributes}})
    assert reply.status_code == 201, reply.text
    pid: str = reply.json()["data"]["id"]
    return pid


def exists(http: httpx.Client, pid: str) -> bool:
    return http.get(f"/api/profiles/{pid}").status_code == 200


def test_access_prints_json_and_writes_csv_and_json_reports(
    env: dict[str, str], http: httpx.Client, tmp_path: Path
) -> None:
    pid = new_profile(http, email="reader@example.com", first_name="Rita")
    lid = http.get("/api/lists").json()["data"][0]["id"]
    body = {"data": [{"type": "profile", "id": pid}]}
    assert http.post(f"/api/lists/{lid}/relationships/profiles", json=body).status_code == 204
    (report,) = ok_json(run(env, "access", "READER@example.com", "--events", "-o", "json"))
    assert report["status"] == "reported"
    assert report["profile_ids"] == [pid]
    (profile,) = report["profiles"]
    assert profile["attributes"]["first_name"] == "Rita"
    assert [m["id"] for m in profile["lists"]] == [lid]
    assert profile["events"] == []
    assert profile["consent"]["email"]["marketing"]["consent"]
    subjects = tmp_path / "subjects.csv"
    subjects.write_text("email,phone_number\nreader@example.com,\nnobody@example.com,\n")
    table = run(env, "access", "--from-file", str(subjects), "-o", "table")
    assert table.returncode == 0, table.stderr
    assert "subject reader@example.com: 1 profile(s)" in table.stdout
    assert "subject nobody@example.com: 0 profile(s)" in table.stdout
    out_csv = tmp_path / "report.csv"
    written = run(env, "access", "--from-file", str(subjects), "--output", str(out_csv))
    assert written.returncode == 0, written.stderr
    rows = list(csv.DictReader(out_csv.read_text().splitlines()))
    assert [(r["subject"], r["profile_id"]) for r in rows] == [
        ("reader@example.com", pid),
        ("nobody@example.com", ""),
    ]
    out_json = tmp_path / "report.json"
    assert run(env, "access", "reader@example.com", "--output", str(out_json)).returncode == 0
    assert json.loads(out_json.read_text())[0]["profile_ids"] == [pid]
    logged = ok_json(run(env, "log", "--subject", "Reader@Example.com", "-o", "json"))
    assert {e["action"] for e in logged} == {"access"}
    assert len(logged) == 4


def test_delete_confirms_purges_the_warehouse_logs_and_a_repeat_request_is_new(
    env: dict[str, str], http: httpx.Client, tmp_path: Path
) -> None:
    pid = new_profile(http, email="leaver@example.com")
    keep = new_profile(http, email="stayer@example.com")
    url = f"duckdb:///{tmp_path / 'kb.duckdb'}"
    synced = subprocess.run(
        [KBRIDGE, "sync", "--to", url, "--streams", "profiles", "--json"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert synced.returncode == 0, synced.stderr
    results = ok_json(run(env, "delete", "leaver@example.com", "--yes", "--to", url, "-o", "json"))
    (result,) = results
    assert (result["outcome"], result["profile_ids"]) == ("confirmed", [pid])
    assert result["warehouse_purged"] == 1
    assert not exists(http, pid)
    assert exists(http, keep)
    wh = open_warehouse(url)
    try:
        ids = {row[0] for row in wh.query("SELECT id FROM profiles")}
    finally:
        wh.close()
    assert pid not in ids
    assert keep in ids
    stored = (tmp_path / "kb.duckdb").read_bytes()
    assert b"stayer@example.com" in stored
    assert b"leaver@example.com" not in stored  # purged means gone from the file, too
    # the person signs up again and asks again: the finished batch is not resumed
    returned = new_profile(http, email="leaver@example.com")
    again = ok_json(run(env, "delete", "leaver@example.com", "--yes", "--to", url, "-o", "json"))
    assert (again[0]["skipped"], again[0]["outcome"]) == (False, "confirmed")
    assert again[0]["profile_ids"] == [returned]
    assert not exists(http, returned)
    logged = ok_json(run(env, "log", "--action", "delete", "-o", "json"))
    assert [e["outcome"] for e in logged] == ["requested", "confirmed", "requested", "confirmed"]
    assert logged[0]["profile_ids"] == [pid]
    assert logged[0]["batch_id"] != logged[2]["batch_id"]
    store = Path(env["KBRIDGE_HOME"]) / "connections.sqlite3"
    assert b"leaver" not in store.read_bytes()
    table = run(env, "log")
    assert table.returncode == 0
    assert "confirmed" in table.stdout


def test_delete_without_yes_off_a_terminal_deletes_nothing(
    env: dict[str, str], http: httpx.Client
) -> None:
    pid = new_profile(http, email="careful@example.com")
    refused = run(env, "delete", "careful@example.com")
    one_line_error(refused, "pass --yes")
    assert pid in refused.stderr  # the match was shown before refusing
    assert exists(http, pid)


def test_a_slow_deletion_is_pending_not_success(
    emulator_factory: Callable[..., EmulatorServer], env: dict[str, str]
) -> None:
    slow = emulator_factory(CONFIG, deletion_delay_seconds=60)
    with http_client_for(slow) as http:
        pid = new_profile(http, email="later@example.com")
        env = {**env, "KLAVIYO_BASE_URL": slow.base_url, "KLAVIYO_API_KEY": slow.api_key}
        result = run(env, "delete", "later@example.com", "--yes", "--wait", "0", "-o", "json")
        one_line_error(result, "1 pending; run the same command again")
        assert json.loads(result.stdout)[0]["outcome"] == "pending"
        assert exists(http, pid)


def test_foreseeable_problems_are_one_line(env: dict[str, str], tmp_path: Path) -> None:
    one_line_error(run(env, "access", "not-an-email"), "not a valid email address")
    one_line_error(run(env, "delete", "--yes"), "no subjects")
    missing = tmp_path / "missing.csv"
    one_line_error(run(env, "access", "--from-file", str(missing)), "cannot read")
    bad = tmp_path / "bad.csv"
    bad.write_text("email\nok@example.com\nbroken\n")
    one_line_error(run(env, "delete", "--from-file", str(bad), "--yes"), "line 3")
    no_key = {k: v for k, v in env.items() if k != "KLAVIYO_API_KEY"}
    one_line_error(run(no_key, "access", "a@example.com"), "no credentials")
    one_line_error(run(env, "log", "--action", "erase"), "--action")


def test_on_a_terminal_delete_asks_and_refuses_ambiguous_subjects(
    env: dict[str, str], http: httpx.Client, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    single = new_profile(http, email="asked@example.com")
    mail = new_profile(http, email="shared@example.com")
    phone = new_profile(http, phone_number="+15005550177")
    subjects = tmp_path / "s.csv"
    subjects.write_text("email,phone\nasked@example.com,\nshared@example.com,+15005550177\n")
    monkeypatch.setattr(privacy_cli, "_stdin_is_terminal", lambda: True)
    monkeypatch.chdir(tmp_path)  # no ./kbridge.duckdb here: nothing to purge
    for key in ("KBRIDGE_HOME", "KLAVIYO_BASE_URL", "KLAVIYO_API_KEY"):
        monkeypatch.setenv(key, env[key])
    runner = CliRunner()
    declined = runner.invoke(app, ["privacy", "delete", "--from-file", str(subjects)], input="n\n")
    assert declined.exit_code == 1
    assert exists(http, single)
    accepted = runner.invoke(
        app, ["privacy", "delete", "--from-file", str(subjects), "-o", "json"], input="y\n"
    )
    assert accepted.exit_code == 1  # the ambiguous subject was refused
    assert "Delete 1 profile(s) of 1 subject(s)" in accepted.output
    assert not exists(http, single)
    assert exists(http, mail)
    assert exists(http, phone)


def test_yes_refuses_a_row_whose_identifiers_match_two_people_unless_allowed(
    env: dict[str, str], http: httpx.Client, tmp_path: Path
) -> None:
    alice = new_profile(http, email="alice.batch@example.com")
    bob = new_profile(http, phone_number="+15005550188")
    carol = new_profile(http, email="carol.batch@example.com")
    subjects = tmp_path / "leavers.csv"
    # a typo'd row: Alice's email beside Bob's phone
    subjects.write_text(
        "email,phone_number\nalice.batch@example.com,+15005550188\ncarol.batch@example.com,\n"
    )
    refused = run(env, "delete", "--from-file", str(subjects), "--yes", "-o", "json")
    one_line_error(refused, "1 refused")
    assert "--allow-ambiguous" in refused.stderr
    first, second = json.loads(refused.stdout)
    assert (first["outcome"], sorted(first["profile_ids"])) == ("refused", sorted([alice, bob]))
    assert "2 profiles" in first["detail"]
    assert second["outcome"] == "confirmed"
    assert exists(http, alice)
    assert exists(http, bob)
    assert not exists(http, carol)
    logged = ok_json(run(env, "log", "--action", "delete", "-o", "json"))
    refusals = [e for e in logged if e["outcome"] == "refused"]
    assert [sorted(e["profile_ids"]) for e in refusals] == [sorted([alice, bob])]
    assert "2 profiles" in refusals[0]["detail"]
    allowed = run(
        env, "delete", "--from-file", str(subjects), "--yes", "--allow-ambiguous", "-o", "json"
    )
    outcomes = {r["subject"]: r["outcome"] for r in ok_json(allowed)}
    assert outcomes["alice.batch@example.com / +15005550188"] == "confirmed"
    assert not exists(http, alice)
    assert not exists(http, bob)


def test_an_internationalised_address_is_deleted_and_found_in_the_log(
    env: dict[str, str], http: httpx.Client
) -> None:
    pid = new_profile(http, email="josé.erase@example.com")
    (result,) = ok_json(run(env, "delete", "josé.erase@example.com", "--yes", "-o", "json"))
    assert (result["outcome"], result["profile_ids"]) == ("confirmed", [pid])
    assert not exists(http, pid)
    logged = ok_json(run(env, "log", "--subject", "JOSÉ.erase@example.com", "-o", "json"))
    assert [e["outcome"] for e in logged] == ["requested", "confirmed"]
    one_line_error(run(env, "delete", "jo sé@example.com", "--yes"), "not a valid email")


def test_log_finds_a_row_that_gave_an_email_and_a_phone_by_either(
    env: dict[str, str], http: httpx.Client, tmp_path: Path
) -> None:
    new_profile(http, email="both.ids@example.com", phone_number="+15005550199")
    subjects = tmp_path / "s.csv"
    subjects.write_text("email,phone_number\nboth.ids@example.com,+15005550199\n")
    assert run(env, "access", "--from-file", str(subjects), "-o", "json").returncode == 0
    by_email = ok_json(run(env, "log", "--subject", "Both.Ids@example.com", "-o", "json"))
    by_phone = ok_json(run(env, "log", "--subject", "+15005550199", "-o", "json"))
    assert [e["outcome"] for e in by_email] == ["reported"]
    assert by_phone == by_email
    assert ok_json(run(env, "log", "--subject", "+15005550198", "-o", "json")) == []
