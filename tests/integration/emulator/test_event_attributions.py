"""``include=attributions`` on events: each order's last-touch message, as records.

The expected attribution is recomputed here from plain ``GET /api/events``
reads: a Placed Order is attributed to the profile's latest Opened Email,
Clicked Email or Clicked SMS carrying a ``$message`` in the five days before
it (the rule the emulator's campaign reports use).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from kbridge.emulator import EmulatorConfig, EmulatorServer
from kbridge.testing.plugin import http_client_for

pytestmark = pytest.mark.integration

WINDOW = 5 * 86400
TOUCHES = ("Opened Email", "Clicked Email", "Clicked SMS")


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    config = EmulatorConfig(seed=31, profiles=150, events=4000, rate_limit_factor=None)
    with EmulatorServer(config) as running:
        yield running


def _when(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["attributes"]["datetime"]).timestamp()


def _expected(
    client: httpx.Client, order: dict[str, Any], names: dict[str, str]
) -> dict[str, Any] | None:
    profile = order["relationships"]["profile"]["data"]["id"]
    params = {"filter": f'equals(profile_id,"{profile}")', "page[size]": "200"}
    events = client.get("/api/events", params=params).json()["data"]
    at = _when(order)
    best: dict[str, Any] | None = None
    for e in events:
        metric = names[e["relationships"]["metric"]["data"]["id"]]
        if metric not in TOUCHES or "$message" not in e["attributes"]["event_properties"]:
            continue
        if at - WINDOW <= _when(e) <= at and (best is None or _when(e) >= _when(best)):
            best = e
    return best


def test_orders_come_with_their_last_touch_attribution(server: EmulatorServer) -> None:
    with http_client_for(server) as client:
        metrics = client.get("/api/metrics").json()["data"]
        names = {m["id"]: m["attributes"]["name"] for m in metrics}
        placed = next(i for i, n in names.items() if n == "Placed Order")
        params = {
            "filter": f'equals(metric_id,"{placed}")',
            "include": "attributions",
            "page[size]": "100",
            "sort": "-datetime",
        }
        body = client.get("/api/events", params=params).json()
        plain = client.get(
            "/api/events", params={k: v for k, v in params.items() if k != "include"}
        ).json()
        included = {(r["type"], r["id"]): r for r in body.get("included", [])}
        attributed = 0
        for order in body["data"][:40]:
            linkage = order["relationships"]["attributions"].get("data", [])
            touch = _expected(client, order, names)
            if touch is None:
                assert linkage == []
                continue
            attributed += 1
            assert len(linkage) == 1
            record = included[("attribution", linkage[0]["id"])]
            rels = record["relationships"]
            assert rels["event"]["data"] == {"type": "event", "id": order["id"]}
            assert rels["attributed-event"]["data"] == {"type": "event", "id": touch["id"]}
            message = touch["attributes"]["event_properties"]["$message"]
            assert rels["campaign-message"]["data"] == {"type": "campaign-message", "id": message}
            campaign = client.get(f"/api/campaign-messages/{message}/campaign").json()["data"]
            assert rels["campaign"]["data"] == {"type": "campaign", "id": campaign["id"]}
        assert attributed >= 3
        # the events themselves are the same, with or without the include
        strip = [
            {**e, "relationships": {**e["relationships"], "attributions": {}}} for e in body["data"]
        ]
        plain_strip = [
            {**e, "relationships": {**e["relationships"], "attributions": {}}}
            for e in plain["data"]
        ]
        assert strip == plain_strip


def test_a_single_event_includes_its_attributions_too(server: EmulatorServer) -> None:
    with http_client_for(server) as client:
        metrics = client.get("/api/metrics").json()["data"]
        placed = next(m["id"] for m in metrics if m["attributes"]["name"] == "Placed Order")
        params = {"filter": f'equals(metric_id,"{placed}")', "include": "attributions"}
        listed = client.get("/api/events", params=params).json()
        order = next(e for e in listed["data"] if e["relationships"]["attributions"].get("data"))
        one = client.get(f"/api/events/{order['id']}", params={"include": "attributions"}).json()
    assert (
        one["data"]["relationships"]["attributions"]["data"]
        == (order["relationships"]["attributions"]["data"])
    )
    assert [r["type"] for r in one["included"]] == ["attribution"]
