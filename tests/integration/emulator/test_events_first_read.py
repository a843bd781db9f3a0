"""A first read of an events page (the byte-template path) against the generic renderer."""

from __future__ import annotations

import pytest

from kbridge.emulator import EmulatorServer
from kbridge.testing.plugin import http_client_for

pytestmark = pytest.mark.integration

PAGE = "/api/events?page[size]=200&sort=-datetime"
#: every event attribute, in the order events carry them: a sparse fieldset that selects
#: all of them takes the generic renderer and must give the very same resources
ALL_FIELDS = "fields[event]=timestamp,event_properties,datetime,uuid"


def test_the_first_read_is_what_the_generic_renderer_writes(emulator: EmulatorServer) -> None:
    with http_client_for(emulator) as client:
        first = client.get(PAGE)
        generic = client.get(f"{PAGE}&{ALL_FIELDS}")
    assert first.status_code == generic.status_code == 200
    start = first.content.index(b'"data":[')
    end = first.content.index(b'],"links":{"self":')
    # byte for byte: the sparse request's document differs only in its own links
    assert generic.content[start:end] == first.content[start:end]
    assert len(first.json()["data"]) == 200


def test_include_keeps_the_events_and_adds_their_profiles_and_metrics(
    emulator: EmulatorServer,
) -> None:
    with http_client_for(emulator) as client:
        plain = client.get(PAGE).json()
        both = client.get(f"{PAGE}&include=profile,metric").json()
    assert both["data"] == plain["data"]
    related = {(e["relationships"][t]["data"]["type"], e["relationships"][t]["data"]["id"])
               for e in plain["data"] for t in ("profile", "metric")}  # fmt: skip
    assert {(r["type"], r["id"]) for r in both["included"]} == related
