from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from kbridge import catalog
from kbridge.core.clock import ManualClock
from kbridge.emulator.backend import EmulatorBackend
from kbridge.emulator.backend.call import Call, Outcome
from kbridge.emulator.config import EmulatorConfig
from kbridge.emulator.query import Query
from kbridge.emulator.simclock import SimClock

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

Caller = Callable[..., Outcome]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> SimClock:
    return SimClock(ManualClock(NOW))


def make_backend(clock: SimClock, *, profiles: int, events: int, **kw: Any) -> EmulatorBackend:
    return EmulatorBackend(EmulatorConfig(seed=7, profiles=profiles, events=events, **kw), clock)


@pytest.fixture
def backend(clock: SimClock) -> EmulatorBackend:
    """A small generated account."""
    return make_backend(clock, profiles=300, events=3000)


@pytest.fixture
def empty(clock: SimClock) -> EmulatorBackend:
    """An account with metrics but no profiles or events: hand-built data only."""
    return make_backend(clock, profiles=0, events=0)


def caller(b: EmulatorBackend) -> Caller:
    def call(op: str, query: Query | None = None, body: Any = None, **path: str) -> Outcome:
        return b.dispatch(Call(catalog.get(op), dict(path), query or Query(), body))

    return call


@pytest.fixture
def call(backend: EmulatorBackend) -> Caller:
    return caller(backend)


@pytest.fixture
def ecall(empty: EmulatorBackend) -> Caller:
    return caller(empty)


def profile_body(**attrs: Any) -> dict[str, Any]:
    return {"data": {"type": "profile", "attributes": attrs}}


def event_body(metric: str, profile: dict[str, Any], **attrs: Any) -> dict[str, Any]:
    attrs.setdefault("properties", {})
    return {
        "data": {
            "type": "event",
            "attributes": {
                **attrs,
                "metric": {"data": {"type": "metric", "attributes": {"name": metric}}},
                "profile": {"data": {"type": "profile", "attributes": profile}},
            },
        }
    }
