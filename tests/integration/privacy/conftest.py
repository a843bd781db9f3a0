"""A privacy test account on the emulator, driven through its simulated clock.

Deletion jobs finish ``deletion_delay_seconds`` of *simulated* time after the
request; :class:`EmulatorClock` is the clock the workflow polls on, and each
of its sleeps moves the emulator's clock by the same amount, so confirmation
takes exactly the waits the backoff asked for and no real time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kbridge.api import AsyncClient
from kbridge.core import ManualClock
from kbridge.emulator import EmulatorConfig, EmulatorServer
from kbridge.testing.plugin import http_client_for

CONFIG = EmulatorConfig(seed=13, profiles=60, events=600, rate_limit_factor=None)


class EmulatorClock(ManualClock):
    """A manual clock whose sleeps also advance the emulator's simulated time."""

    def __init__(self, server: EmulatorServer) -> None:
        super().__init__()
        self.server = server

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        if seconds > 0:
            async with httpx.AsyncClient(base_url=self.server.base_url) as http:
                reply = await http.post("/_emulator/clock", json={"advance_seconds": seconds})
                reply.raise_for_status()


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(CONFIG) as running:
        yield running


@pytest.fixture
def http(server: EmulatorServer) -> Iterator[httpx.Client]:
    with http_client_for(server) as client:
        yield client


def client_for(server: EmulatorServer) -> AsyncClient:
    """kbridge's client; its limiter paces on a manual clock (no real waits)."""
    return AsyncClient(server.api_key, base_url=server.base_url, clock=ManualClock())


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def all_of(http: httpx.Client, path: str, params: dict[str, Any] | None = None) -> list[Any]:
    """Every resource of a collection, read with a plain HTTP client (not kbridge's)."""
    out: list[Any] = []
    body = ok(http.get(path, params=params or {}))
    while True:
        out.extend(body["data"])
        nxt = body.get("links", {}).get("next")
        if not nxt:
            return out
        body = ok(http.get(nxt))


def create_profile(http: httpx.Client, **attributes: Any) -> str:
    body = {"data": {"type": "profile", "attributes": attributes}}
    pid: str = ok(http.post("/api/profiles", json=body), 201)["data"]["id"]
    return pid


def add_to_list(http: httpx.Client, list_id: str, profile_id: str) -> None:
    body = {"data": [{"type": "profile", "id": profile_id}]}
    ok(http.post(f"/api/lists/{list_id}/relationships/profiles", json=body), 204)


def place_order(http: httpx.Client, email: str, order: str) -> None:
    body = {"data": {"type": "event", "attributes": {
        "properties": {"OrderId": order}, "value": 25,
        "metric": {"data": {"type": "metric", "attributes": {"name": "Placed Order"}}},
        "profile": {"data": {"type": "profile", "attributes": {"email": email}}},
    }}}  # fmt: skip
    ok(http.post("/api/events", json=body), 202)


def profile_exists(http: httpx.Client, profile_id: str) -> bool:
    status = http.get(f"/api/profiles/{profile_id}").status_code
    assert status in (200, 404)
    return status == 200
