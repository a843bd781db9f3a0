"""``kill -9`` mid-sync: a real ``kbridge sync`` process is killed after a chosen number of
API requests, restarted, and the DuckDB file ends identical to an uninterrupted sync."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from kbridge.emulator.config import EmulatorConfig
from kbridge.emulator.server import EmulatorServer
from kbridge.sync import get_stream
from kbridge.testing.plugin import http_client_for
from kbridge.warehouse import open_warehouse

from .conftest import snapshot

pytestmark = pytest.mark.integration

STREAMS = "profiles,events,list_memberships"
CONFIG = EmulatorConfig(
    seed=13, profiles=150, events=4000, rate_limit_factor=None, faults="latency=15ms"
)


def sync_command(server: EmulatorServer, target: Path) -> list[str]:
    return [
        sys.executable,
        "-c",
        "from kbridge.cli import main; main()",
        "sync",
        "--api-key",
        server.api_key,
        "--base-url",
        server.base_url,
        "--to",
        f"duckdb:///{target}",
        "--streams",
        STREAMS,
        "--json",
    ]


ENV = {**os.environ, "KLAVIYO_API_KEY": ""}


def sync_to_the_end(server: EmulatorServer, target: Path) -> None:
    done = subprocess.run(
        sync_command(server, target), capture_output=True, env=ENV, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]


def sync_process(server: EmulatorServer, target: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        sync_command(server, target),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=ENV,
    )


def requests_seen(http: httpx.Client) -> int:
    return int(http.get("/_emulator/stats").json()["requests"])


def kill_after(proc: subprocess.Popen[bytes], http: httpx.Client, requests: int) -> bool:
    """SIGKILL ``proc`` once the emulator has served ``requests`` more requests;
    False if it finished first."""
    goal = requests_seen(http) + requests
    while proc.poll() is None:
        if requests_seen(http) >= goal:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
    return False


def test_kill_9_at_several_points_then_restart_ends_identical(tmp_path: Path) -> None:
    tables = [t for name in STREAMS.split(",") for t in get_stream(name).tables]
    with EmulatorServer(CONFIG) as server, http_client_for(server) as http:
        clean = tmp_path / "clean.duckdb"
        sync_to_the_end(server, clean)
        killed = tmp_path / "killed.duckdb"
        kills = 0
        for after in (3, 9, 17):
            proc = sync_process(server, killed)
            kills += kill_after(proc, http, after)
        assert kills >= 2, "the sync finished before it could be killed: nothing was proven"
        sync_to_the_end(server, killed)
    expected, got = open_warehouse(str(clean)), open_warehouse(str(killed))
    try:
        for t in tables:
            assert snapshot(got, t) == snapshot(expected, t), t.name
    finally:
        expected.close()
        got.close()
