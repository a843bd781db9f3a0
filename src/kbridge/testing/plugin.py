"""pytest fixtures that run the Klaviyo emulator over loopback HTTP.

Enable in a ``conftest.py`` with ``pytest_plugins = ["kbridge.testing.plugin"]``:

- ``emulator``: one session-wide :class:`EmulatorServer` with a small seeded
  account (40 profiles, 400 events, seed 42) and rate limits off;
- ``emulator_factory``: start another emulator with your own
  :class:`EmulatorConfig` (e.g. tiny rate limits); stopped at teardown;
- ``emulator_client``: an ``httpx.Client`` on the session emulator with the
  ``Authorization`` and ``revision`` headers set — a plain HTTP client, not
  kbridge's, so a test of the emulator never depends on our client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

import httpx
import pytest

from kbridge.catalog import REVISION
from kbridge.emulator.config import EmulatorConfig
from kbridge.emulator.server import EmulatorServer
from kbridge.testing.postgres import postgres_server, postgres_url  # noqa: F401  (fixtures)
from kbridge.testing.redis import redis_server, redis_url  # noqa: F401  (fixtures)

__all__ = [
    "DEFAULT_TEST_CONFIG",
    "emulator",
    "emulator_client",
    "emulator_factory",
    "http_client_for",
]

#: small and fast to generate, rate limits off: tests pace themselves only when they mean to
DEFAULT_TEST_CONFIG = EmulatorConfig(seed=42, profiles=40, events=400, rate_limit_factor=None)


def http_client_for(server: EmulatorServer, *, key: str | None = None) -> httpx.Client:
    """An ``httpx.Client`` speaking to ``server`` as ``key`` (default: the full-access key)."""
    return httpx.Client(
        base_url=server.base_url,
        headers={
            "Authorization": f"Klaviyo-API-Key {key or server.api_key}",
            "revision": REVISION,
            "accept": "application/vnd.api+json",
        },
        timeout=30.0,
    )


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorServer]:
    """A session-wide emulator (seed 42, 40 profiles, 400 events, no rate limits)."""
    with EmulatorServer(DEFAULT_TEST_CONFIG) as server:
        yield server


@pytest.fixture
def emulator_factory() -> Iterator[Callable[..., EmulatorServer]]:
    """``emulator_factory(config=None, **changes)`` starts another emulator for this test."""
    started: list[EmulatorServer] = []

    def start(config: EmulatorConfig | None = None, **changes: object) -> EmulatorServer:
        cfg = replace(config or DEFAULT_TEST_CONFIG, **changes)  # type: ignore[arg-type]
        server = EmulatorServer(cfg).start()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop()


@pytest.fixture
def emulator_client(emulator: EmulatorServer) -> Iterator[httpx.Client]:
    """An ``httpx.Client`` on the session emulator with auth and revision headers."""
    with http_client_for(emulator) as client:
        yield client
