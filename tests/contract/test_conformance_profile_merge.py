"""Profile merge, judged by the schemas in Klaviyo's OpenAPI spec and by what it does:
the source's events and lists move to the destination, the destination keeps its own
values and takes the source's where it has none, and the source is gone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kbridge.emulator import EmulatorConfig, EmulatorServer
from kbridge.emulator.backend import EmulatorBackend
from kbridge.emulator.simclock import SimClock
from kbridge.testing.plugin import http_client_for
from tests.contract.test_conformance_flows_images_tags import expect_400, send

pytestmark = pytest.mark.contract


def merge_body(dest: str, *sources: str) -> dict[str, Any]:
    rows = [{"type": "profile", "id": s} for s in sources]
    return {"data": {"type": "profile-merge", "id": dest,
                     "relationships": {"profiles": {"data": rows}}}}  # fmt: skip


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    config = EmulatorConfig(seed=6, profiles=40, events=600, rate_limit_factor=None)
    with EmulatorServer(config) as server, http_client_for(server) as client:
        yield client


def event_ids(http: httpx.Client, pid: str) -> set[str]:
    params = {"filter": f"equals(profile_id,'{pid}')", "page[size]": "200"}
    out: set[str] = set()
    r = http.get("/api/events", params=params)
    while True:
        body = r.json()
        out |= {e["id"] for e in body["data"]}
        nxt = body["links"].get("next")
        if not nxt:
            return out
        r = http.get(nxt)


def list_ids(http: httpx.Client, pid: str) -> set[str]:
    return {r["id"] for r in http.get(f"/api/profiles/{pid}/lists").json()["data"]}


def test_merge_profiles_is_emulated() -> None:
    implemented = EmulatorBackend(EmulatorConfig(profiles=0, events=0), SimClock()).implemented
    assert "merge_profiles" in implemented


def test_merge_moves_events_and_lists_and_deletes_the_source(http: httpx.Client) -> None:
    profiles = http.get("/api/profiles", params={"page[size]": "40"}).json()["data"]
    with_events = [p for p in profiles if event_ids(http, p["id"])]
    source, dest = with_events[0], with_events[1]
    src_events, dest_events = event_ids(http, source["id"]), event_ids(http, dest["id"])
    lst = http.get("/api/lists").json()["data"][0]["id"]
    joined = {"data": [{"type": "profile", "id": source["id"]}]}
    assert http.post(f"/api/lists/{lst}/relationships/profiles", json=joined).status_code == 204
    cleared = {"data": {"type": "profile", "id": dest["id"],
                        "attributes": {"title": None, "properties": {"dest_only": 1}}}}  # fmt: skip
    assert http.patch(f"/api/profiles/{dest['id']}", json=cleared).is_success
    extra = {"title": "Buyer", "properties": {"src_only": 2}}
    tagged = {"data": {"type": "profile", "id": source["id"], "attributes": extra}}
    assert http.patch(f"/api/profiles/{source['id']}", json=tagged).is_success

    device = {"token": "merge-tok", "platform": "ios", "vendor": "apns",
              "profile": {"data": {"type": "profile", "id": source["id"]}}}  # fmt: skip
    token = {"data": {"type": "push-token", "attributes": device}}
    assert http.post("/api/push-tokens", json=token).status_code == 202

    answer = send(
        http, "merge_profiles", "/api/profile-merge", merge_body(dest["id"], source["id"])
    )
    assert answer["data"]["id"] == dest["id"]

    assert http.get(f"/api/profiles/{source['id']}").status_code == 404
    assert event_ids(http, dest["id"]) == dest_events | src_events
    assert lst in list_ids(http, dest["id"])
    tokens = http.get(f"/api/profiles/{dest['id']}/push-tokens").json()["data"]
    assert "merge-tok" in {t["attributes"]["token"] for t in tokens}
    merged = http.get(f"/api/profiles/{dest['id']}").json()["data"]["attributes"]
    assert merged["email"] == dest["attributes"]["email"]  # the destination's values win
    assert merged["title"] == "Buyer"  # and it takes what it lacked
    assert merged["properties"]["src_only"] == 2
    assert merged["properties"]["dest_only"] == 1


def test_merge_errors_are_spec_shaped(http: httpx.Client) -> None:
    ids = [p["id"] for p in http.get("/api/profiles").json()["data"][:3]]
    op, path = "merge_profiles", "/api/profile-merge"
    assert "one source" in expect_400(http, op, path, merge_body(ids[0], ids[1], ids[2]))
    assert "one source" in expect_400(http, op, path, merge_body(ids[0]))
    assert "itself" in expect_400(http, op, path, merge_body(ids[0], ids[0]))
    assert "does not exist" in expect_400(http, op, path, merge_body("NOPE", ids[1]))
    assert "does not exist" in expect_400(http, op, path, merge_body(ids[0], "NOPE"))
    assert http.get(f"/api/profiles/{ids[1]}").status_code == 200  # nothing was merged
