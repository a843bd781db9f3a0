"""``kbridge push profiles`` through the real console script, against the emulator."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from kbridge.core import loads
from kbridge.emulator import EmulatorServer
from kbridge.warehouse import open_warehouse
from tests.e2e.test_cli import KBRIDGE, run

pytestmark = pytest.mark.e2e

IMPORT = "profile-bulk-import-job"
#: nothing listens here: a command that reached the network would say so instead
UNREACHABLE = "http://127.0.0.1:9"


def make_warehouse(tmp_path: Path, n: int, *, blank: int | None = None) -> str:
    path = tmp_path / "wh.duckdb"
    wh = open_warehouse(str(path))
    wh.query(
        "CREATE TABLE scores AS SELECT 'p' || i || '@example.com' AS email, "
        "i / 100 AS churn_risk, 'P' || i AS first_name FROM range(?) t(i)",
        [n],
    )
    if blank is not None:
        wh.query("UPDATE scores SET email = '' WHERE churn_risk = ?", [blank / 100])
    wh.close()
    return f"duckdb:///{path}"


def key_args(server: EmulatorServer | None) -> list[str]:
    if server is None:
        return ["--api-key", "pk_" + "a" * 34, "--base-url", UNREACHABLE]
    return ["--api-key", server.api_key, "--base-url", server.base_url]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--table", "scores", "--properties", "risk"], "error: no column 'risk' in the source"),
        (
            ["--query", "SELECT * FROM nowhere", "--all-columns"],
            "error: cannot read the query: Catalog Error: Table with name nowhere",
        ),
        (["--table", "scores", "--all-columns", "--id-column", "external_id"], "error: no column"),
        (["--file", "missing.csv", "--all-columns"], "error: missing.csv: no such file"),
        (["--table", "scores"], "error: name the columns to send with --properties"),
        (
            ["--table", "scores", "--all-columns", "--id-column", "nickname"],
            "error: --id-column must be one of email, phone_number, external_id, id, "
            "not 'nickname'",
        ),
    ],
)
def test_bad_input_is_one_line_before_any_request(
    tmp_path: Path, args: list[str], line: str
) -> None:
    source = make_warehouse(tmp_path, 3)
    result = run("push", "profiles", "--from", source, *args, *key_args(None))
    assert result.returncode == 1
    assert result.stderr.startswith(line), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_empty_identities_are_refused_before_any_request(tmp_path: Path) -> None:
    source = make_warehouse(tmp_path, 3, blank=1)
    result = run("push", "profiles", "--from", source, "--table", "scores", "--all-columns",
                 *key_args(None))  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: 1 of 3 rows have no email; filter them out or choose another --id-column"
    )


def test_json_summary_from_a_file_with_a_bad_row(
    tmp_path: Path, emulator_factory: Callable[..., EmulatorServer]
) -> None:
    server = emulator_factory(profiles=0, events=0)
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        '{"email": "a@example.com", "plan": "gold"}\n'
        '{"email": "broken", "plan": "x"}\n'
        '{"email": "b@example.com", "plan": "silver"}\n'
    )
    source = f"duckdb:///{tmp_path}/state.duckdb"
    args = ["push", "profiles", "--from", source, "--file", str(rows), "--properties", "plan",
            "--json", "--rate-limits", "off", *key_args(server)]  # fmt: skip
    first = run(*args)
    assert first.returncode == 0, first.stderr
    assert loads(first.stdout) == {
        "rows": 3, "sent": 3, "unchanged": 0, "skipped_no_consent": 0, "errors": 1, "jobs": 1,
    }  # fmt: skip
    wh = open_warehouse(source)
    assert wh.query("SELECT identity, field FROM push_errors") == [("broken", "email")]
    wh.close()
    second = run(*args)
    assert loads(second.stdout)["unchanged"] == 2


def test_kill_9_mid_push_and_resume_without_doubling(
    tmp_path: Path, emulator_factory: Callable[..., EmulatorServer]
) -> None:
    # jobs finish two simulated (= real) seconds after they are accepted, as Klaviyo's do later
    server = emulator_factory(profiles=0, events=0, job_delay_seconds=2.0)
    n = 50
    source = make_warehouse(tmp_path, n)
    limits = ["--properties", "churn_risk,first_name", "--job-profiles", "10"]
    env = {**os.environ, "NO_COLOR": "1"}
    # a tenth of the published limits: about one job a second, so the kill lands while the
    # push waits for its next slot, after the last job it reported was recorded
    command = [KBRIDGE, "push", "profiles", "--from", source, "--table", "scores", *limits,
               "--rate-limits", "0.1", *key_args(server)]  # fmt: skip
    reported = []
    with subprocess.Popen(
        command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env
    ) as child:
        assert child.stderr is not None
        for line in child.stderr:
            if "profiles submitted" in line:
                reported.append(line)
                if len(reported) == 2:
                    break
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    store = server.state.backend.store
    before = [j for j in store.jobs.values() if j.kind == IMPORT]
    assert len(before) == 2
    resumed = subprocess.run(
        [KBRIDGE, "push", "profiles", "--from", source, "--table", "scores", *limits,
         "--rate-limits", "off", "--json", *key_args(server)],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    summary = loads(resumed.stdout)
    assert (summary["sent"], summary["unchanged"], summary["jobs"]) == (n - 20, 20, 3)
    jobs = [j for j in store.jobs.values() if j.kind == IMPORT]
    assert sorted(j.total_count for j in jobs) == [10] * 5
    assert all(j.status == "complete" for j in jobs)
    emails = {p.email for p in store.profiles if not p.deleted}
    assert emails == {f"p{i}@example.com" for i in range(n)}
    wh = open_warehouse(source)
    assert wh.query("SELECT count(*), min(status) FROM push_jobs") == [(5, "complete")]
    wh.close()


def test_subscriptions_and_events_from_the_command_line(
    tmp_path: Path, emulator_factory: Callable[..., EmulatorServer]
) -> None:
    server = emulator_factory(profiles=0, events=0)
    rows = tmp_path / "consent.csv"
    rows.write_text(
        "email,opted_in,order_id,total\n"
        "a@example.com,yes,o1,5\n"
        "b@example.com,,o2,7\n"
        "c@example.com,no,o3,9\n"
    )
    source = f"duckdb:///{tmp_path}/state.duckdb"
    common = ["--from", source, "--file", str(rows), "--json", "--rate-limits", "off",
              *key_args(server)]  # fmt: skip
    subs = run("push", "subscriptions", "--consent-column", "opted_in", *common)
    assert subs.returncode == 0, subs.stderr
    assert loads(subs.stdout) == {
        "rows": 3, "sent": 2, "unchanged": 0, "skipped_no_consent": 1, "errors": 0, "jobs": 2,
    }  # fmt: skip
    events = run("push", "events", "--metric", "Pushed Order", "--unique-id-column", "order_id",
                 "--value-column", "total", "--properties", "opted_in", *common)  # fmt: skip
    assert events.returncode == 0, events.stderr
    assert loads(events.stdout)["sent"] == 3
    missing = run("push", "subscriptions", "--consent-column", "consent", *common)
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: no column 'consent' in the source")
