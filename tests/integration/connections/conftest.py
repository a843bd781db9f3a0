from __future__ import annotations

from pathlib import Path

import pytest

from kbridge.connections import ConnectionStore


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def store(tmp_path: Path) -> ConnectionStore:
    """A fresh connection store file of the test's own."""
    return ConnectionStore(tmp_path / "connections.sqlite3")
