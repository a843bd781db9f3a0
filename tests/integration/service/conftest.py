"""The app database under test: an embedded SQLite file and a real PostgreSQL, each test both."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kbridge.core import ManualClock
from kbridge.service.appdb import AppDatabase
from kbridge.service.db import database_url


@pytest.fixture(params=["sqlite", "postgresql"])
def app_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return database_url(tmp_path / "data")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))


@pytest.fixture
def appdb(app_db_url: str, clock: ManualClock) -> Iterator[AppDatabase]:
    db = AppDatabase.open(app_db_url, clock=clock)
    try:
        yield db
    finally:
        db.close()
