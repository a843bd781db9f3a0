"""Memberships after interruptions: a resumed run ends equal to the account as of its
start (lists read before the interruption may have changed since), and a run killed
after its first pages keeps them."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from kbridge import sync
from kbridge.emulator.config import EmulatorConfig
from kbridge.emulator.server import EmulatorServer
from kbridge.testing.plugin import http_client_for
from kbridge.warehouse import Warehouse, open_warehouse
from kbridge.warehouse.duckdb import DuckDBWarehouse

from .conftest import SMALL, FailAfter, api_all, client_for
from .test_sync_concurrency import account_memberships, big_list

pytestmark = pytest.mark.integration

ENV = {**os.environ, "KLAVIYO_API_KEY": ""}


def stored(wh: Warehouse) -> set[tuple[str, str]]:
    rows = wh.query("SELECT list_id, profile_id FROM list_memberships")
    return {(str(a), str(b)) for a, b in rows}


def run(server: EmulatorServer, wh: Warehouse) -> sync.SyncResult:
    async def go() -> sync.SyncResult:
        async with client_for(server) as client:
            return await sync.run(client, wh, streams=["list_memberships"])

    return asyncio.run(go())


def _members(http: httpx.Client, list_id: str) -> set[str]:
    return {m["id"] for m in api_all(http, f"/api/lists/{list_id}/profiles")}


def test_a_resumed_run_ends_equal_to_the_account_as_of_its_start() -> None:
    with EmulatorServer(SMALL) as server, http_client_for(server) as http:
        wh = DuckDBWarehouse(":memory:")
        try:
            with pytest.raises(sync.SyncError):
                run(server, FailAfter(wh, 2))  # two lists read, then the process "dies"
            lists = [lst["id"] for lst in api_all(http, "/api/lists")]
            have = stored(wh)
            # lists whose members all arrived (and the rows say so) before the interruption
            read = [
                lid
                for lid in lists
                if any(k[0] == lid for k in have)
                and {(lid, p) for p in _members(http, lid)} <= have
            ]
            assert read, "no list was read before the interruption: nothing is proven"
            everyone = {p["id"] for p in api_all(http, "/api/profiles")}
            for lid in read:  # the account changes after these lists were read
                members = _members(http, lid)
                gone = sorted(members)[0]
                joined = sorted(everyone - members)[0]
                removed = http.request(
                    "DELETE",
                    f"/api/lists/{lid}/relationships/profiles",
                    json={"data": [{"type": "profile", "id": gone}]},
                )
                assert removed.status_code == 204, removed.text
                added = http.post(
                    f"/api/lists/{lid}/relationships/profiles",
                    json={"data": [{"type": "profile", "id": joined}]},
                )
                assert added.status_code == 204, added.text
            expected = account_memberships(http)
            run(server, wh)
            assert stored(wh) == expected
        finally:
            wh.close()


#: a list of many pages and pages slow enough that a run can be killed between them
KILL_CONFIG = EmulatorConfig(
    seed=5, profiles=2500, events=0, rate_limit_factor=None, faults="latency=20ms"
)
STREAMS = "profiles,list_memberships"


def sync_command(server: EmulatorServer, target: Path) -> list[str]:
    return [sys.executable, "-c", "from kbridge.cli import main; main()", "sync",
            "--api-key", server.api_key, "--base-url", server.base_url,
            "--to", f"duckdb:///{target}", "--streams", STREAMS, "--json",
            "--rate-limits", "off"]  # fmt: skip


def served(http: httpx.Client) -> dict[str, int]:
    ops = http.get("/_emulator/stats").json()["operations"]
    return {op: int(s["requests"]) for op, s in ops.items()}


def kill_after_pages(server: EmulatorServer, http: httpx.Client, target: Path, pages: int) -> None:
    """Start a sync and SIGKILL it once it has asked for ``pages`` more pages of profiles
    and of list members: the request for page n follows the commit of what came before,
    so a run that commits its first page promptly has it saved by then."""
    start = served(http)
    proc = subprocess.Popen(
        sync_command(server, target), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV
    )
    try:
        while True:
            now = served(http)
            if all(
                now.get(op, 0) - start.get(op, 0) >= pages
                for op in ("get_profiles", "get_profiles_for_list")
            ):
                break
            assert proc.poll() is None, "the sync ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()


def test_a_run_killed_after_its_first_pages_keeps_them_and_a_later_run_converges(
    tmp_path: Path,
) -> None:
    target = tmp_path / "k.duckdb"
    with EmulatorServer(KILL_CONFIG) as server, http_client_for(server) as http:
        big = big_list(http, "Everyone", 2500)
        kill_after_pages(server, http, target, 3)
        wh = open_warehouse(str(target))
        try:
            first_profiles = wh.query("SELECT count(*) FROM profiles")[0][0]
            first_members = stored(wh)
        finally:
            wh.close()
        assert first_profiles >= 100, "the first page of profiles was not kept"
        assert len({k for k in first_members if k[0] == big}) >= 100, (
            "the first page of members was not kept"
        )
        # some members leave after they were read; a second run is killed too
        gone = sorted(p for lid, p in first_members if lid == big)[:5]
        removed = http.request(
            "DELETE",
            f"/api/lists/{big}/relationships/profiles",
            json={"data": [{"type": "profile", "id": p} for p in gone]},
        )
        assert removed.status_code == 204, removed.text
        kill_after_pages(server, http, target, 3)
        done = subprocess.run(
            sync_command(server, target), capture_output=True, env=ENV, timeout=300, check=False
        )
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        expected = account_memberships(http)
    wh = open_warehouse(str(target))
    try:
        assert stored(wh) == expected
    finally:
        wh.close()
