"""The REST API served by uvicorn on a loopback port, over an app database in tmp_path.

Two workspaces (``a`` and ``b``) each with a token; the session emulator
verifies connection keys over real HTTP.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from kbridge.connections import generate_master_key
from kbridge.core import ManualClock
from kbridge.emulator.server import EmulatorServer
from kbridge.service.appdb import AppDatabase
from kbridge.service.db import database_url
from kbridge.web import create_app


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """``app`` under uvicorn in a thread on a free loopback port; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    )
    thread = threading.Thread(
        target=lambda: asyncio.run(server.serve(sockets=[sock])), name="kbridge-api", daemon=True
    )
    thread.start()
    ready = threading.Event()
    for _ in range(1000):
        if server.started or not thread.is_alive():
            break
        ready.wait(0.01)
    assert server.started, "the API server did not start"
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@dataclass
class Api:
    """A running API: one client per workspace, and the job ids it told the broker about."""

    base_url: str
    app: Any
    clock: ManualClock
    appdb: AppDatabase
    data_dir: Path
    emulator: EmulatorServer
    a: httpx.Client
    b: httpx.Client
    workspace_a: str
    workspace_b: str
    enqueued: list[str] = field(default_factory=list)

    def anonymous(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30.0)

    def connect(self, client: httpx.Client, name: str = "shop", **extra: Any) -> dict[str, Any]:
        """A connection made with the emulator's good key (asserting it was made)."""
        body = {"name": name, "api_key": self.emulator.api_key, "base_url": self.emulator.base_url}
        reply = client.post("/api/v1/connections", json={**body, **extra})
        assert reply.status_code == 201, reply.text
        created: dict[str, Any] = reply.json()
        return created


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))


@contextmanager
def running_api(
    url: str, data_dir: Path, emulator: EmulatorServer, clock: ManualClock
) -> Iterator[Api]:
    appdb = AppDatabase.open(url, clock=clock)
    enqueued: list[str] = []
    app = create_app(
        appdb,
        data_dir=data_dir,
        master_key=generate_master_key(),
        on_enqueued=enqueued.append,
        clock=clock,
    )
    tokens = {}
    ids = {}
    for name in ("a", "b"):
        workspace = appdb.create_workspace(name)
        ids[name] = workspace.id
        tokens[name] = appdb.create_token(workspace.id).token
    try:
        with serve(app) as base_url:
            clients = {
                name: httpx.Client(
                    base_url=base_url,
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=30.0,
                )
                for name, token in tokens.items()
            }
            try:
                yield Api(
                    base_url,
                    app,
                    clock,
                    appdb,
                    data_dir,
                    emulator,
                    clients["a"],
                    clients["b"],
                    ids["a"],
                    ids["b"],
                    enqueued,
                )
            finally:
                for client in clients.values():
                    client.close()
    finally:
        appdb.close()


@pytest.fixture
def api(tmp_path: Path, emulator: EmulatorServer, clock: ManualClock) -> Iterator[Api]:
    data_dir = tmp_path / "data"
    with running_api(database_url(data_dir), data_dir, emulator, clock) as running:
        yield running
