"""Served events come as KeptResources over a bounded cache; deletion and reset forget them."""

from __future__ import annotations

import pytest

from kbridge.emulator.backend import EmulatorBackend
from kbridge.emulator.backend.errors import NotFoundError
from kbridge.emulator.backend.resource import KeptResources, Resource
from kbridge.emulator.query import Page, Query
from kbridge.emulator.simclock import SimClock
from tests.unit.emulator.backend.conftest import Caller, event_body

pytestmark = pytest.mark.unit


def _page(call: Caller, size: int = 50) -> KeptResources:
    out = call("get_events", Query(page_size=size)).data
    assert isinstance(out, Page)
    assert isinstance(out.items, KeptResources)
    return out.items


def test_a_page_of_events_is_built_on_demand_from_event_indexes(
    call: Caller, backend: EmulatorBackend
) -> None:
    page = _page(call, size=3)
    store = backend.store
    assert page.type == "event"
    assert page.cache is store.event_json
    assert list(page.keys) == list(store.event_order[:3])
    assert [r.id for r in page] == [store.event_id(i) for i in page.keys]
    assert page[1].id == page[1:2][0].id == store.event_id(page.keys[1])
    single = call("get_event", id=page[0].id).data
    assert isinstance(single, Resource)
    assert page[0].attributes == single.attributes


def test_privacy_deletion_forgets_the_kept_events(
    ecall: Caller, empty: EmulatorBackend, clock: SimClock
) -> None:
    for email in ("gone@example.com", "stay@example.com"):
        ecall("create_event", body=event_body("Placed Order", {"email": email}, value=5))
    page = _page(ecall)
    store = empty.store
    owner = store.find_identifier("email", "gone@example.com")
    assert owner is not None
    (gone,) = [i for i in page.keys if store.events.profile[i] == owner.seq]
    gone_id = store.event_id(gone)
    for i in page.keys:  # as http/ does once it has served them
        store.event_json.put(i, ("http://emulator.test", b"{}"))

    body = {
        "data": {
            "type": "data-privacy-deletion-job",
            "attributes": {
                "profile": {
                    "data": {"type": "profile", "attributes": {"email": "gone@example.com"}}
                }
            },
        }
    }
    ecall("request_profile_deletion", body=body)
    clock.advance(60.0)  # EmulatorConfig.deletion_delay_seconds
    empty.run_due()

    assert gone not in store.event_json
    assert next(i for i in page.keys if i != gone) in store.event_json
    assert list(_page(ecall).keys) == [i for i in page.keys if i != gone]
    with pytest.raises(NotFoundError):
        ecall("get_event", id=gone_id)


def test_reset_starts_with_an_empty_cache(call: Caller, backend: EmulatorBackend) -> None:
    backend.store.event_json.put(0, ("http://emulator.test", b"{}"))
    backend.reset()
    assert len(backend.store.event_json) == 0
