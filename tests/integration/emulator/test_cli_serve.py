"""``kbridge emulator serve`` as a user runs it: a real process, stopped with Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from kbridge.catalog import REVISION

pytestmark = pytest.mark.integration

KBRIDGE = str(Path(sys.executable).with_name("kbridge"))
ENV = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
_STARTUP = 60.0


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [KBRIDGE, "emulator", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )


def test_serve_prints_url_and_key_answers_and_stops_on_sigint(tmp_path: Path) -> None:
    truth = tmp_path / "truth.json"
    proc = start(
        "--port", "0", "--profiles", "8", "--events", "40", "--rate-limits", "off",
        "--truth-out", str(truth),
    )  # fmt: skip
    watchdog = threading.Timer(_STARTUP, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout is not None
        url_line = proc.stdout.readline()
        key_line = proc.stdout.readline()
        url = re.search(r"(http://127\.0\.0\.1:\d+)", url_line)
        key = re.search(r"(pk_[A-Za-z0-9]{34})\b", key_line)
        assert url, url_line
        assert key, key_line
        r = httpx.get(
            f"{url[1]}/api/accounts",
            headers={"Authorization": f"Klaviyo-API-Key {key[1]}", "revision": REVISION},
        )
        assert r.status_code == 200, r.text
        assert r.json()["data"][0]["type"] == "account"
        assert truth.read_text().strip().startswith("{")
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=_STARTUP)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode in (0, 130)
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate-limits", "fast"], "--rate-limits must be 'spec', 'off' or a positive factor"),
        (["--rate-limits", "-1"], "--rate-limits factor must be a positive number"),
        (["--port", "http"], "--port must be an integer"),
        (["--profiles", "-5"], "--profiles must be >= 0"),
        (["--rate-limit-algorithm", "token"], "--rate-limit-algorithm must be one of"),
        (["--api-key", "AbC123"], "--api-key must look like a Klaviyo private key"),
        (["--data-file", "missing.json"], "--data-file: no such file 'missing.json'"),
        (["--accounts", "0"], "--accounts must be between 1 and 1000, got 0"),
        (["--accounts", "many"], "--accounts must be an integer"),
        (
            ["--accounts", "2", "--data-file", __file__],
            "--data-file serves one account; drop --accounts or --data-file",
        ),
        # the control plane mints keys: beyond loopback it needs a token (issue 17 item 8)
        (["--host", "0.0.0.0", "--port", "0"], "listening on 0.0.0.0 exposes the control plane"),
    ],
)
def test_bad_options_are_one_clear_line(args: list[str], message: str) -> None:
    result = subprocess.run(
        [KBRIDGE, "emulator", "serve", *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=_STARTUP,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {message}"), result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def _serve_and_read(args: list[str], path: str) -> dict[str, Any]:
    """Start ``serve`` with ``args``, GET ``path`` (an admin path), stop it."""
    proc = start("--port", "0", "--rate-limits", "off", *args)
    watchdog = threading.Timer(_STARTUP, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout is not None
        url = re.search(r"(http://127\.0\.0\.1:\d+)", proc.stdout.readline())
        assert url
        body: dict[str, Any] = httpx.get(f"{url[1]}{path}", timeout=30).json()
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=_STARTUP)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return body


def test_a_generated_file_serves_the_same_account(tmp_path: Path) -> None:
    account = tmp_path / "account.json"
    made = subprocess.run(
        [KBRIDGE, "emulator", "generate", str(account), "--seed", "3", "--profiles", "25",
         "--events", "300"],
        capture_output=True, text=True, env=ENV, timeout=_STARTUP, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "wrote 25 profiles" in made.stdout
    from_file = _serve_and_read(
        ["--data-file", str(account), "--profiles", "0"], "/_emulator/truth"
    )
    generated = _serve_and_read(
        ["--seed", "3", "--profiles", "25", "--events", "300"], "/_emulator/truth"
    )
    # the file wins over --profiles, and holds what the generator made
    assert from_file["aggregates"] == generated["aggregates"]

    # ids and times follow the moment of generation; the hidden traits do not
    def traits(truth: dict[str, Any]) -> list[tuple[float, float]]:
        return [(p["engagement_rate"], p["purchase_rate"]) for p in truth["profiles"].values()]

    assert traits(from_file) == traits(generated)


def test_a_malformed_data_file_is_one_clear_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    result = subprocess.run(
        [KBRIDGE, "emulator", "serve", "--port", "0", "--data-file", str(bad)],
        capture_output=True, text=True, env=ENV, timeout=_STARTUP, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("error: --data-file: "), result.stderr
    assert "Traceback" not in result.stderr


def test_a_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            [KBRIDGE, "emulator", "serve", "--port", str(port), "--profiles", "0"],
            capture_output=True,
            text=True,
            env=ENV,
            timeout=_STARTUP,
            check=False,
        )
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: port {port} on 127.0.0.1 is already in use")
    assert "Traceback" not in result.stderr


def test_serve_with_accounts_prints_every_key_and_each_reaches_its_own_account() -> None:
    proc = start("--port", "0", "--profiles", "6", "--events", "20", "--accounts", "3",
                 "--rate-limits", "off")  # fmt: skip
    watchdog = threading.Timer(_STARTUP, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout is not None
        url = re.search(r"(http://127\.0\.0\.1:\d+)", proc.stdout.readline())
        assert url
        lines = [proc.stdout.readline() for _ in range(3)]
        keys = [re.search(r"(pk_[A-Za-z0-9]{34})\b", line) for line in lines]
        assert all(keys), lines
        assert lines[1].startswith("account 1 private key")
        assert lines[2].startswith("account 2 private key")
        account_ids = set()
        for key in keys:
            assert key is not None
            r = httpx.get(
                f"{url[1]}/api/accounts",
                headers={"Authorization": f"Klaviyo-API-Key {key[1]}", "revision": REVISION},
            )
            assert r.status_code == 200, r.text
            account_ids.add(r.json()["data"][0]["id"])
        assert len(account_ids) == 3
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=_STARTUP)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in stderr
