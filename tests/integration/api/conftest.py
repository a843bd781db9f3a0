"""One small emulator and one kbridge client for the module's action tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kbridge.api import Client
from kbridge.emulator import EmulatorConfig, EmulatorServer

CONFIG = EmulatorConfig(seed=7, profiles=60, events=300, rate_limit_factor=None)


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(CONFIG) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: EmulatorServer) -> Iterator[Client]:
    with Client(server.api_key, base_url=server.base_url) as c:
        yield c
