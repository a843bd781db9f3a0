"""Helpers for sync tests: a small emulator account, API reads with a plain HTTP client,
table snapshots that compare across dialects, and a warehouse that fails on cue."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kbridge.api import AsyncClient
from kbridge.core import ManualClock, loads
from kbridge.emulator.config import EmulatorConfig
from kbridge.emulator.server import EmulatorServer
from kbridge.sync.streams import RUN_COLUMN, STREAMS
from kbridge.testing.plugin import http_client_for
from kbridge.warehouse import Batch, Table, Warehouse

SMALL = EmulatorConfig(seed=7, profiles=120, events=3000, rate_limit_factor=None)


def _served() -> tuple[str, ...]:
    """Streams whose operation the emulator implements (others land with its coverage)."""
    from kbridge.emulator.backend import EmulatorBackend
    from kbridge.emulator.simclock import SimClock

    backend = EmulatorBackend(EmulatorConfig(profiles=0, events=0), SimClock())
    return tuple(s.name for s in STREAMS if s.operation_id in backend.implemented)


#: every stream the emulator can serve today
SERVED = _served()


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    """One small account per module (read-only tests share it)."""
    with EmulatorServer(SMALL) as s:
        yield s


@pytest.fixture
def http(server: EmulatorServer) -> Iterator[httpx.Client]:
    with http_client_for(server) as client:
        yield client


def client_for(server: EmulatorServer) -> AsyncClient:
    """kbridge's client; its limiter sleeps on a manual clock so paced tiers cost no time."""
    return AsyncClient(server.api_key, base_url=server.base_url, clock=ManualClock())


def api_all(http: httpx.Client, path: str, params: dict[str, Any] | None = None) -> list[Any]:
    """Every resource of a collection, read with a plain HTTP client (not kbridge's)."""
    out: list[Any] = []
    response = http.get(path, params=params or {})
    while True:
        response.raise_for_status()
        body = response.json()
        out.extend(body["data"])
        nxt = body.get("links", {}).get("next")
        if not nxt:
            return out
        response = http.get(nxt)


def snapshot(wh: Warehouse, table: Table) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """Rows by primary key, normalised so DuckDB and PostgreSQL compare equal:
    timestamps as UTC text, JSON parsed; the run column is bookkeeping, left out."""
    cols = [c for c in table.columns if c.name != RUN_COLUMN]
    exprs = ", ".join(
        f'CAST("{c.name}" AS VARCHAR)' if c.type in ("timestamp", "json") else f'"{c.name}"'
        for c in cols
    )
    out: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    key_pos = [i for i, c in enumerate(cols) if c.name in table.primary_key]
    for row in wh.query(f'SELECT {exprs} FROM "{table.name}"'):  # noqa: S608
        norm = tuple(
            loads(v) if c.type == "json" and v is not None else v
            for c, v in zip(cols, row, strict=True)
        )
        out[tuple(norm[i] for i in key_pos)] = norm
    return out


class FailAfter:
    """A warehouse that commits ``n`` batches, then raises — a crash at a chosen point."""

    def __init__(self, inner: Warehouse, n: int) -> None:
        self.inner = inner
        self.left = n

    @property
    def capabilities(self) -> Any:
        return self.inner.capabilities

    def migrate(self, tables: Any) -> None:
        self.inner.migrate(tables)

    def commit(self, batch: Batch) -> None:
        if self.left <= 0:
            raise RuntimeError("injected crash before commit")
        self.left -= 1
        self.inner.commit(batch)

    def load_state(self, account_id: str, stream: str) -> dict[str, dict[str, Any]]:
        return self.inner.load_state(account_id, stream)

    def query(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        return self.inner.query(sql, params)

    def close(self) -> None:
        self.inner.close()
