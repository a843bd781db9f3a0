"""``kbridge sync`` end to end on the emulator: JSON summary, a resumable file, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kbridge.cli.app import app
from kbridge.emulator.server import EmulatorServer
from kbridge.warehouse import open_warehouse

pytestmark = pytest.mark.integration


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"KLAVIYO_API_KEY": "", "COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


def sync_args(server: EmulatorServer, target: str, *more: str) -> list[str]:
    """``kbridge sync`` against the emulator into ``target``, then ``more``."""
    return ["sync", "--api-key", server.api_key, "--base-url", server.base_url, "--to", target,
            *more]  # fmt: skip


def test_sync_writes_a_duckdb_file_and_prints_a_json_summary(
    server: EmulatorServer, tmp_path: Path
) -> None:
    target = f"duckdb:///{tmp_path}/k.duckdb"
    base = sync_args(server, target)
    code, out, err = invoke(*base, "--streams", "lists,metrics", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["ok"] is True
    by_stream = {s["stream"]: s for s in summary["streams"]}
    assert set(by_stream) == {"lists", "metrics"}
    wh = open_warehouse(target)
    assert wh.query("SELECT count(*) FROM lists") == [(by_stream["lists"]["records"],)]
    assert wh.load_state(summary["account_id"], "lists")
    wh.close()


def test_lookback_sets_how_far_a_second_run_reads_again(
    server: EmulatorServer, tmp_path: Path
) -> None:
    target = f"duckdb:///{tmp_path}/k.duckdb"
    base = sync_args(server, target, "--streams", "events", "--json")
    assert invoke(*base)[0] == 0
    reread = {}
    for lookback in ("0", "7d", "30d"):
        code, out, err = invoke(*base, "--lookback", lookback)
        assert code == 0, err
        reread[lookback] = json.loads(out)["streams"][0]["records"]
    wh = open_warehouse(target)
    total = wh.query("SELECT count(*) FROM events")[0][0]
    wh.close()
    assert reread["0"] < 10  # same-second ties only
    assert reread["0"] < reread["7d"] < reread["30d"] <= total


def test_without_a_terminal_progress_lines_go_to_stderr(
    server: EmulatorServer, tmp_path: Path
) -> None:
    target = f"duckdb:///{tmp_path}/k.duckdb"
    base = sync_args(server, target, "--streams", "profiles,events", "--json")
    code, out, err = invoke(*base, "--log-every", "0.01s")
    assert code == 0, err
    assert json.loads(out)["ok"] is True  # stdout stays the summary alone
    lines = [line for line in err.splitlines() if line.startswith("sync: ")]
    assert lines, err
    last = lines[-1]
    assert "records" in last
    assert "events" in err
    assert "waiting for the first pages" in lines[0] or "records" in lines[0]
    code, out, err = invoke(*base, "--full-refresh", "--log-every", "0")
    assert code == 0, err
    assert "sync: " not in err


@pytest.mark.parametrize(("value", "factor"), [("off", None), ("0.5", 0.5)])
def test_rate_limits_reach_the_client_and_the_sync_runs(
    server: EmulatorServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    value: str,
    factor: float | None,
) -> None:
    import kbridge.cli.sync as sync_cli

    seen: list[float | None] = []

    class Recording(sync_cli.AsyncClient):
        async def __aenter__(self) -> Recording:
            seen.append(self.rate_limiter.config.limit_factor)
            await super().__aenter__()
            return self

    monkeypatch.setattr(sync_cli, "AsyncClient", Recording)
    target = f"duckdb:///{tmp_path}/k.duckdb"
    code, out, err = invoke(
        *sync_args(server, target, "--streams", "profiles,lists", "--json", "--rate-limits", value)
    )
    assert code == 0, err
    assert seen == [factor]
    summary = json.loads(out)
    assert summary["ok"] is True
    records = {s["stream"]: s["records"] for s in summary["streams"]}
    assert records["profiles"] > 0
    assert records["lists"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--to", "mysql://db"], "unknown destination"),
        (["--streams", "profiles,nope"], "unknown stream 'nope'"),
        (["--start-date", "2024-01-01"], "give a timezone"),
        (["--every", "10s"], "at least 1m"),
        (["--lookback", "a week"], "--lookback: 'a week'"),
        (["--log-every", "often"], "--log-every: 'often'"),
        (
            ["--rate-limits", "nonsense"],
            "--rate-limits must be 'spec', 'off' or a positive factor such as 0.5, got 'nonsense'",
        ),
        (["--rate-limits", "0"], "--rate-limits factor must be a positive number, got '0'"),
    ],
)
def test_bad_options_are_one_clear_line(
    server: EmulatorServer, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from kbridge.cli.app import main

    with pytest.raises(SystemExit) as exit_info:
        main(["sync", "--api-key", server.api_key, "--base-url", server.base_url, *args])
    assert exit_info.value.code != 0
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_no_credentials_is_an_error_naming_the_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from kbridge.cli.app import main

    monkeypatch.delenv("KLAVIYO_API_KEY", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["sync", "--to", f"duckdb:///{tmp_path}/x.duckdb"])
    assert exit_info.value.code != 0
    assert "--api-key" in capsys.readouterr().err


def test_report_streams_show_the_day_reached_and_split_new_rows_from_re_read_ones(
    server: EmulatorServer, tmp_path: Path
) -> None:
    import re
    from datetime import timedelta

    import httpx

    from kbridge.sync.state import parse_ts

    now = parse_ts(httpx.get(f"{server.base_url}/_emulator/clock").json()["now"])
    start = (now - timedelta(days=60)).strftime("%Y-%m-%dT00:00:00Z")  # 60 requests
    target = f"duckdb:///{tmp_path}/k.duckdb"
    args = sync_args(server, target, "--streams", "campaign_values_daily", "--rate-limits",
                     "off", "--log-every", "0.01s", "--start-date", start)  # fmt: skip
    code, out, err = invoke(*args)
    assert code == 0, err
    # without a terminal, progress lines carry the report's day and the time left
    assert re.search(r"campaign_values_daily [\d,]+ records, .*day \d+ of 60", err), err
    # the summary: every row is new on a first run (nothing read again yet)
    line = next(x for x in out.splitlines() if "campaign_values_daily" in x)
    found = re.search(r"([\d,]+) records", line)
    assert found is not None
    assert f"({found.group(1)} new, 0 re-read)" in line
