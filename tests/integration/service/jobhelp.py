"""Helpers for the worker tests: a connection to an emulator, ids on both sides, waiting."""

from __future__ import annotations

import time
from typing import Any

from kbridge.connections import Sender
from kbridge.emulator.server import EmulatorServer
from kbridge.service.appdb import AppDatabase
from kbridge.service.connection_store import SqlConnectionStore
from kbridge.service.views import JobView
from kbridge.testing.plugin import http_client_for
from kbridge.warehouse import open_warehouse

FINISHED = ("succeeded", "failed", "cancelled")
#: a key of the right shape that no emulator knows
BAD_KEY = "pk_" + "0" * 34


def account_id(server: EmulatorServer) -> str:
    with http_client_for(server) as http:
        found: str = http.get("/api/accounts").json()["data"][0]["id"]
    return found


def connect(
    db: AppDatabase,
    workspace_id: str,
    server: EmulatorServer,
    master_key: bytes,
    *,
    name: str = "shop",
    api_key: str | None = None,
    rate_limits: str = "off",
    warehouse: str | None = None,
    account: str | None = None,
) -> str:
    """Save ``server``'s account (``account``: its id, known already) as a connection of the
    workspace; its id."""
    store = SqlConnectionStore(db.engine, workspace_id, master_key=master_key)
    return store.upsert(
        name,
        kind="api_key",
        base_url=server.base_url,
        account_id=account or account_id(server),
        account_name=None,
        sender=Sender(),
        capabilities=(),
        scopes=(),
        secrets={"api_key": api_key or server.api_key},
        rate_limits=rate_limits,
        warehouse=warehouse,
    ).id


def emulator_ids(server: EmulatorServer, path: str = "/api/profiles") -> set[str]:
    """Every id the emulator serves at ``path`` (all pages)."""
    ids: set[str] = set()
    with http_client_for(server) as http:
        url: str | None = path
        while url:
            body: dict[str, Any] = http.get(url).json()
            ids.update(item["id"] for item in body["data"])
            url = (body.get("links") or {}).get("next")
    return ids


def warehouse_ids(url: str, table: str = "profiles") -> list[str]:
    """The ids in ``table`` of the warehouse at ``url``, duplicates kept."""
    warehouse = open_warehouse(url)
    try:
        return [str(row[0]) for row in warehouse.query(f"SELECT id FROM {table}")]  # noqa: S608
    finally:
        warehouse.close()


def wait_for(
    db: AppDatabase,
    job_id: str,
    *,
    states: tuple[str, ...] = FINISHED,
    until: Any = None,
    patience: float = 120.0,
) -> JobView:
    """Poll the app database until the job is in ``states`` (or ``until(job)``): a wait with
    a generous bound, never a measurement."""
    deadline = time.monotonic() + patience
    while True:
        job = db.job_by_id(job_id)
        assert job is not None
        if (until(job) if until is not None else job.state in states) or False:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job.state} ({job.last_error})")
        time.sleep(0.05)
