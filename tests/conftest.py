"""Shared fixtures: the emulator plugin (``emulator``, ``emulator_factory``,
``emulator_client``) and the anyio backend for async tests."""

from __future__ import annotations

import pytest

pytest_plugins = ["kbridge.testing.plugin"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
