"""The generated catalogue and coupons: deterministic, and joined to the generated events."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from kbridge.emulator.backend.vocabulary import M_ORDERED_PRODUCT, event_properties
from kbridge.emulator.datagen import generate, generate_catalog

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def test_same_seed_same_catalogue_different_seed_different_codes() -> None:
    profiles = [f"P{n}" for n in range(100)]
    one = generate_catalog(3, NOW.timestamp(), profiles)
    again = generate_catalog(3, NOW.timestamp(), profiles)
    other = generate_catalog(4, NOW.timestamp(), profiles)
    assert one == again
    assert [c.unique_code for c in one.codes] != [c.unique_code for c in other.codes]
    assert len({c.id for c in one.codes}) == len(one.codes)
    assert {c.profile_id for c in one.codes if c.status != "UNASSIGNED"} <= set(profiles)
    assert all(c.profile_id is None for c in one.codes if c.status == "UNASSIGNED")
    assert all(c.expires_at > NOW.timestamp() for c in one.codes)


def test_every_ordered_product_is_in_the_catalogue() -> None:
    data = generate(5, 20, 600, NOW)
    shop = generate_catalog(data.seed, data.now, [p.id for p in data.profiles])
    external_ids = {item.attrs["external_id"] for item in shop.items}
    ordered = {
        event_properties(data.seed, i, m, data.events.aux[i], data.events.value[i])[0]["ProductID"]
        for i, m in enumerate(data.events.metric)
        if m == M_ORDERED_PRODUCT
    }
    assert ordered
    assert ordered <= external_ids
    for variant in shop.variants:
        (item_id,) = variant.links
        assert item_id in {item.id for item in shop.items}
    in_categories = {i for c in shop.categories for i in c.links}
    assert in_categories == {item.id for item in shop.items}
    assert orjson.dumps([item.attrs for item in shop.items])  # plain JSON values only
