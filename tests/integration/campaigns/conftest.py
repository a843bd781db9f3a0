"""One emulator per module, an async client on it, and helpers for its control plane."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime

import httpx
import pytest

from kbridge.api import AsyncClient
from kbridge.core import ManualClock
from kbridge.emulator import EmulatorConfig, EmulatorServer

CONFIG = EmulatorConfig(seed=7, profiles=200, events=600, rate_limit_factor=None)


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(CONFIG) as running:
        yield running


@pytest.fixture
async def control(server: EmulatorServer) -> AsyncIterator[httpx.AsyncClient]:
    """The emulator's control plane (``/_emulator/…``)."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        yield http


@pytest.fixture
async def client(server: EmulatorServer) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(server.api_key, base_url=server.base_url) as c:
        yield c


async def emulator_now(control: httpx.AsyncClient) -> datetime:
    return datetime.fromisoformat((await control.get("/_emulator/clock")).json()["now"])


async def advance(control: httpx.AsyncClient, seconds: float) -> datetime:
    """Move simulated time on (due sends and follow-ups run); the new ``now``."""
    reply = await control.post("/_emulator/clock", json={"advance_seconds": seconds})
    reply.raise_for_status()
    return datetime.fromisoformat(reply.json()["now"])


@pytest.fixture
async def clock(control: httpx.AsyncClient) -> ManualClock:
    """A client-side clock set to the emulator's simulated now (never the wall clock)."""
    return ManualClock(await emulator_now(control))
