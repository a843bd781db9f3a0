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


def _walk(call: Any, op: str, **path: str) -> list[str]:
    ids: list[str] = []
    cursor: str | None = None
    while True:
        out = call(op, Query(page_size=100, cursor=cursor), **path)
        ids += [r.id for r in out.data.items]
        cursor = out.data.next_cursor
        if cursor is None:
            return ids


def test_extra_catalogue_coupons_and_records_are_generated_as_configured() -> None:
    """A benchmark asks for a catalogue, coupons and custom-object records by the thousand."""
    plain = caller(make_backend(SimClock(), profiles=40, events=100))
    backend = make_backend(
        SimClock(),
        profiles=40,
        events=100,
        extra_catalog_items=250,
        extra_catalog_categories=3,
        extra_coupons=4,
        codes_per_extra_coupon=120,
        extra_custom_object_records=130,
    )
    call = caller(backend)
    items = _walk(call, "get_catalog_items")
    assert len(items) == len(_walk(plain, "get_catalog_items")) + 250
    assert len(set(items)) == len(items)
    assert len(_walk(call, "get_catalog_variants")) == len(items)
    fixed = _walk(plain, "get_catalog_categories")
    extra = [c for c in _walk(call, "get_catalog_categories") if c not in fixed]
    assert len(extra) == 3
    # the extra items spread round-robin over the extra categories
    spread = [len(_walk(call, "get_items_for_catalog_category", id=c)) for c in extra]
    assert spread == [84, 83, 83]
    coupons = _walk(call, "get_coupons")
    assert len(coupons) == len(_walk(plain, "get_coupons")) + 4
    codes = _walk(call, "get_coupon_codes_for_coupon", id=coupons[-1])
    assert len(codes) == len(set(codes)) == 120
    (otype,) = [r.id for r in call("get_object_types", Query()).data]
    records = _walk(call, "get_records_for_object_type", id=otype)
    assert len(records) == len(_walk(plain, "get_records_for_object_type", id=otype)) + 130
