"""The fast path for cold event pages writes the very bytes of the generic renderer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import orjson
import pytest

from kbridge.core import dumps
from kbridge.emulator.backend import EmulatorBackend
from kbridge.emulator.backend.cache import BoundedCache
from kbridge.emulator.backend.resource import Flat, FlatResource, KeptResources, Rendered, Resource
from kbridge.emulator.backend.vocabulary import (
    M_SPAM,
    METRICS,
    event_properties,
    event_properties_json,
)
from kbridge.emulator.config import EmulatorConfig
from kbridge.emulator.datagen import generate
from kbridge.emulator.http.jsonapi import RequestContext
from kbridge.emulator.query import Page, Query
from kbridge.emulator.simclock import SimClock
from tests.unit.emulator.backend.conftest import Caller, caller, event_body

pytestmark = pytest.mark.unit

BASE = "http://emulator.test"

#: properties that exercise JSON escaping and number formatting
ODD = {
    'quote"and\\backslash': 'say "hi" \\ bye',
    "control": "tab\there\nnewline\x01\x1f",
    "unicode": "café ünï 日本 🛒 \u2028\u2029 \x7f",
    "percent": "100% of %s and %(x)s",
    "html": "</script><b>&amp;",
    "numbers": [0, -1, 2**53, 1.5, 1e-7, 1e22, -0.0, 3.141592653589793],
    "nested": {"a": [{"b": None, "c": True, "d": False}], "": ""},
    "empty": {},
}


def _page(call: Caller, size: int = 1000) -> KeptResources:
    out = call("get_events", Query(page_size=size)).data
    assert isinstance(out, Page)
    assert isinstance(out.items, KeptResources)
    return out.items


def _generic(kept: KeptResources, base: str = BASE) -> list[bytes]:
    ctx = RequestContext(base_url=base, path="/api/events")
    return [dumps(ctx.resource(res)) for res in kept]


def _fast(kept: KeptResources, base: str = BASE) -> list[bytes]:
    ctx = RequestContext(base_url=base, path="/api/events")
    return ctx.render_kept(kept)


def test_generated_events_are_written_as_the_generic_renderer_writes_them(
    call: Caller, backend: EmulatorBackend
) -> None:
    page = _page(call)
    assert page.flat is not None
    assert len(page) == 1000
    assert _fast(page) == _generic(page)
    assert len(page.cache) == 1000
    # the whole account, so that every generated metric is there (but the rare spam
    # reports: the properties test below covers them)
    store = backend.store
    kept = KeptResources("event", store.event_order, page.build, page.cache, page.flat)
    assert {store.events.metric[i] for i in kept.keys} >= set(range(len(METRICS))) - {M_SPAM}
    page.cache.discard(page.keys[0])
    assert _fast(kept) == _generic(kept)


@pytest.mark.parametrize("seed", [0, 1, 2**63 + 5, 2**64 - 1])
def test_other_seeds_give_the_same_bytes_both_ways(clock: SimClock, seed: int) -> None:
    backend = EmulatorBackend(EmulatorConfig(seed=seed, profiles=30, events=400), clock)
    kept = _page(caller(backend))
    assert _fast(kept) == _generic(kept)


def test_api_events_with_odd_properties_and_ids_match_the_generic_renderer(
    ecall: Caller, empty: EmulatorBackend
) -> None:
    ecall(
        "create_event",
        body=event_body('Odd "metric" ✓', {"email": "odd@example.com"}, properties=ODD),
    )
    ecall(
        "create_event",
        body=event_body(
            "Placed Order",
            {"email": "frac@example.com"},
            time="2026-10-01T00:00:00.123456Z",
            value=12.5,
            unique_id="u-1",
            properties={"n": 1},
        ),
    )
    ecall("create_event", body=event_body("Nothing", {"email": "none@example.com"}))
    store = empty.store
    # ids the emulator makes need no escaping; a loaded dataset's might
    store.profiles[store.events.profile[0]].id = 'p"\\\x00é'
    kept = _page(ecall)
    assert len(kept) == 3
    fast = _fast(kept, base="http://127.0.0.1:9/pre%20fix")
    assert fast == _generic(kept, base="http://127.0.0.1:9/pre%20fix")
    decoded = [orjson.loads(b) for b in fast]
    assert {e["attributes"]["datetime"] for e in decoded} >= {"2026-10-01T00:00:00.123456+00:00"}
    odd = next(e for e in decoded if "control" in e["attributes"]["event_properties"])
    assert odd["attributes"]["event_properties"] == ODD
    assert odd["relationships"]["profile"]["data"]["id"] == 'p"\\\x00é'


def test_kept_and_missing_events_keep_their_page_order(
    call: Caller, backend: EmulatorBackend
) -> None:
    kept = _page(call, size=6)
    expected = _generic(kept)
    # half the page kept from an earlier request, half cold
    for i in kept.keys[::2]:
        kept.cache.put(i, (BASE, b"{}"))
    out = _fast(kept)
    assert out[::2] == [b"{}"] * 3
    assert out[1::2] == expected[1::2]
    # and a page kept for another base URL is written again, for this one
    assert _fast(kept, base="http://other.test") == _generic(kept, base="http://other.test")


def test_a_sparse_fieldset_still_takes_the_generic_path(call: Caller) -> None:
    kept = _page(call, size=5)
    ctx = RequestContext(base_url=BASE, path="/api/events", fields={"event": ["uuid"]})
    out = [orjson.loads(b) for b in ctx.render_kept(kept)]
    assert [set(e["attributes"]) for e in out] == [{"uuid"}] * 5
    assert len(kept.cache) == 0


class _Shapes:
    """A stand-in backend of another shape: to-many free, any number of to-one."""

    def __init__(self, to_one: tuple[tuple[str, str], ...], links_only: tuple[str, ...]) -> None:
        self.to_one = to_one
        self.links_only = links_only

    def resource(self, key: int) -> Resource:
        rels = {name: (rtype, f"{rtype}-{key}%s") for name, rtype in self.to_one}
        return Resource("thing", f"T{key}", {"n": key, "s": "%d"}, rels, self.links_only)

    def flats(self, keys: Sequence[int]) -> list[FlatResource]:
        return [
            (
                f"T{k}".encode(),
                dumps({"n": k, "s": "%d"}),
                *(f"{rtype}-{k}%s".encode() for _, rtype in self.to_one),
            )
            for k in keys
        ]


@pytest.mark.parametrize(
    ("to_one", "links_only"),
    [
        ((), ()),
        ((("owner", "profile"),), ()),
        ((), ("history", "tags")),
        (tuple((f"r{k}", "metric") for k in range(12)), ("x",)),
    ],
)
def test_the_template_follows_any_shape(
    to_one: tuple[tuple[str, str], ...], links_only: tuple[str, ...]
) -> None:
    shapes = _Shapes(to_one, links_only)
    kept = KeptResources(
        "thing",
        [1, 2, 3],
        shapes.resource,
        BoundedCache[int, Rendered](10),
        Flat(to_one, links_only, shapes.flats),
    )
    assert _fast(kept) == _generic(kept)


def test_properties_json_is_the_dict_serialised_for_every_generated_event() -> None:
    data = generate(11, 400, 8000, datetime(2026, 6, 1, tzinfo=UTC))
    ev = data.events
    assert set(ev.metric) == set(range(len(METRICS)))
    for i in range(ev.generated):
        args = (data.seed, i, ev.metric[i], ev.aux[i], ev.value[i])
        assert event_properties_json(*args) == dumps(event_properties(*args)[0]), i


@pytest.mark.parametrize("metric", range(len(METRICS) + 1))
def test_properties_json_handles_an_empty_order_and_unknown_metrics(metric: int) -> None:
    args = (3, 5, metric, 0, 19.99)
    assert event_properties_json(*args) == dumps(event_properties(*args)[0])
