"""Serialising a page of KeptResources: kept bytes reused, fieldsets bypass the cache."""

from __future__ import annotations

import orjson
import pytest

from kbridge.core import dumps
from kbridge.emulator.backend.cache import BoundedCache
from kbridge.emulator.backend.resource import KeptResources, Rendered, Resource
from kbridge.emulator.http.jsonapi import RequestContext

pytestmark = pytest.mark.unit

BASE = "http://emulator.test"


class Events:
    """Builds events and counts how often (what the cache saves)."""

    def __init__(self) -> None:
        self.built: list[int] = []

    def __call__(self, key: int) -> Resource:
        self.built.append(key)
        return Resource(
            "event",
            f"E{key}",
            {"timestamp": key, "datetime": f"dt{key}", "event_properties": {"n": key}},
            relationships={"profile": ("profile", "P1"), "metric": ("metric", "M1")},
            links_only=("attributions",),
        )


def _ctx(base: str = BASE, fields: dict[str, list[str]] | None = None) -> RequestContext:
    return RequestContext(base_url=base, path="/api/events", fields=fields)


def _kept(build: Events, cache: BoundedCache[int, Rendered], keys: list[int]) -> KeptResources:
    return KeptResources("event", keys, build, cache)


def test_each_resource_is_serialised_as_its_document_and_kept() -> None:
    build, cache = Events(), BoundedCache[int, Rendered](10)
    ctx = _ctx()
    out = ctx.render_kept(_kept(build, cache, [1, 2]))
    assert [orjson.loads(b) for b in out] == [ctx.resource(build(1)), ctx.resource(build(2))]
    assert cache.get(1) == (BASE, out[0])


def test_kept_bytes_are_served_without_building_again() -> None:
    build, cache = Events(), BoundedCache[int, Rendered](10)
    first = _ctx().render_kept(_kept(build, cache, [1, 2]))
    build.built.clear()
    again = _ctx().render_kept(_kept(build, cache, [2, 1, 3]))
    assert build.built == [3]
    assert again[:2] == [first[1], first[0]]


def test_another_base_url_serialises_again_with_its_links() -> None:
    build, cache = Events(), BoundedCache[int, Rendered](10)
    _ctx().render_kept(_kept(build, cache, [1]))
    (other,) = _ctx("http://127.0.0.1:9").render_kept(_kept(build, cache, [1]))
    assert orjson.loads(other)["links"]["self"] == "http://127.0.0.1:9/api/events/E1/"
    assert cache.get(1) == ("http://127.0.0.1:9", other)


def test_a_sparse_fieldset_neither_uses_nor_fills_the_cache() -> None:
    build, cache = Events(), BoundedCache[int, Rendered](10)
    (full,) = _ctx().render_kept(_kept(build, cache, [1]))
    sparse = _ctx(fields={"event": ["datetime"]}).render_kept(_kept(build, cache, [1, 2]))
    assert [orjson.loads(b)["attributes"] for b in sparse] == [
        {"datetime": "dt1"},
        {"datetime": "dt2"},
    ]
    assert cache.get(1) == (BASE, full)
    assert 2 not in cache
    # a fieldset for another type does not concern events
    (same,) = _ctx(fields={"profile": ["email"]}).render_kept(_kept(build, cache, [1]))
    assert same is full
    assert dumps(_ctx().resource(build(1))) == full
