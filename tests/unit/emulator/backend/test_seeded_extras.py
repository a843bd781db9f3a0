"""The webhook, reviews and custom object a generated account starts with are part of it:
a reset brings them back identical, however far the clock has moved."""

from __future__ import annotations

from typing import Any

import pytest

from kbridge.emulator.backend.call import Outcome
from kbridge.emulator.backend.resource import Resource
from kbridge.emulator.query import Query
from kbridge.emulator.simclock import SimClock
from tests.unit.emulator.backend.conftest import caller, make_backend

pytestmark = pytest.mark.unit

LISTINGS = ("get_webhooks", "get_reviews", "get_object_types", "get_data_sources")


def _seen(out: Outcome) -> list[tuple[str, dict[str, Any]]]:
    data = out.data
    items = data if isinstance(data, list) else list(getattr(data, "items", []))
    assert all(isinstance(r, Resource) for r in items)
    return [(r.id, r.attributes) for r in items]


def test_reset_restores_the_seeded_extras_exactly() -> None:
    clock = SimClock()
    backend = make_backend(clock, profiles=40, events=100)
    call = caller(backend)
    before = {op: _seen(call(op, Query())) for op in LISTINGS}
    assert all(before.values())
    clock.advance(7 * 86400)
    backend.reset()
    after = {op: _seen(call(op, Query())) for op in LISTINGS}
    assert after == before
