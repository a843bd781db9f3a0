"""Cached event pages over loopback: same documents, fieldsets honoured, deletions seen."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kbridge.emulator import EmulatorServer
from kbridge.testing.plugin import http_client_for

pytestmark = pytest.mark.integration

PAGE = "/api/events?page[size]=100&sort=-datetime"


def test_a_page_served_twice_is_the_same_document(emulator: EmulatorServer) -> None:
    with http_client_for(emulator) as client:
        first = client.get(PAGE)
        again = client.get(PAGE)
    assert first.status_code == again.status_code == 200
    assert again.content == first.content
    data = first.json()["data"]
    assert len(data) == 100
    assert data[0]["links"]["self"] == f"{emulator.base_url}/api/events/{data[0]['id']}/"


def test_a_sparse_fieldset_after_a_cached_page_selects_its_fields(
    emulator: EmulatorServer,
) -> None:
    with http_client_for(emulator) as client:
        full = client.get(PAGE).json()["data"]
        sparse = client.get(f"{PAGE}&fields[event]=datetime,event_properties").json()["data"]
    assert [e["id"] for e in sparse] == [e["id"] for e in full]
    for whole, picked in zip(full, sparse, strict=True):
        assert picked["attributes"] == {
            "datetime": whole["attributes"]["datetime"],
            "event_properties": whole["attributes"]["event_properties"],
        }
        assert picked["relationships"] == whole["relationships"]


def test_events_of_a_deleted_profile_leave_a_cached_page(
    emulator_factory: Callable[..., EmulatorServer],
) -> None:
    server = emulator_factory(profiles=10, events=200)
    with http_client_for(server) as client:
        before = client.get("/api/events?page[size]=200").json()["data"]
        victim = before[0]["relationships"]["profile"]["data"]["id"]
        theirs = {e["id"] for e in before if e["relationships"]["profile"]["data"]["id"] == victim}
        job = {
            "data": {
                "type": "data-privacy-deletion-job",
                "attributes": {"profile": {"data": {"type": "profile", "id": victim}}},
            }
        }
        assert client.post("/api/data-privacy-deletion-jobs", json=job).status_code == 202
        moved = client.post(f"{server.base_url}/_emulator/clock", json={"advance_seconds": 61})
        assert moved.status_code == 200
        after = client.get("/api/events?page[size]=200").json()["data"]
        gone = client.get(f"/api/events/{next(iter(theirs))}")
    # (flows may have added events as the clock moved: compare the ones served before)
    kept = [e["id"] for e in after if e["id"] in {b["id"] for b in before}]
    assert theirs
    assert kept == [e["id"] for e in before if e["id"] not in theirs]
    assert gone.status_code == 404
