"""Images, flows, tags and data privacy over real loopback HTTP, driven by the
simulated clock through the control plane."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from kbridge.emulator import EmulatorConfig, EmulatorServer
from kbridge.testing.plugin import http_client_for

pytestmark = pytest.mark.integration

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    config = EmulatorConfig(seed=5, profiles=60, events=600, rate_limit_factor=None)
    with EmulatorServer(config) as running:
        yield running


@pytest.fixture
def http(server: EmulatorServer) -> Iterator[httpx.Client]:
    with http_client_for(server) as client:
        yield client


def advance(server: EmulatorServer, seconds: float) -> None:
    r = httpx.post(f"{server.base_url}/_emulator/clock", json={"advance_seconds": seconds})
    assert r.status_code == 200, r.text


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def metric_id(http: httpx.Client, name: str) -> str:
    metrics = ok(http.get("/api/metrics"))["data"]
    return next(m["id"] for m in metrics if m["attributes"]["name"] == name)


def events_of(http: httpx.Client, profile_id: str) -> list[dict[str, Any]]:
    params = {"filter": f'equals(profile_id,"{profile_id}")'}
    data: list[dict[str, Any]] = ok(http.get("/api/events", params=params))["data"]
    return data


def place_order(http: httpx.Client, email: str) -> None:
    body = {"data": {"type": "event", "attributes": {
        "properties": {"OrderId": "1"}, "value": 25,
        "metric": {"data": {"type": "metric", "attributes": {"name": "Placed Order"}}},
        "profile": {"data": {"type": "profile", "attributes": {"email": email}}},
    }}}  # fmt: skip
    ok(http.post("/api/events", json=body), 202)


def profile_id_of(http: httpx.Client, email: str) -> str | None:
    params = {"filter": f'equals(email,"{email}")'}
    found = ok(http.get("/api/profiles", params=params))["data"]
    return found[0]["id"] if found else None


def test_a_live_flow_emails_the_buyer_when_its_delay_is_over(
    server: EmulatorServer, http: httpx.Client
) -> None:
    definition = {
        "triggers": [{"type": "metric", "id": metric_id(http, "Placed Order")}],
        "entry_action_id": "wait",
        "actions": [
            {"temporary_id": "wait", "type": "time-delay", "links": {"next": "mail"},
             "data": {"unit": "hours", "value": 3}},
            {"temporary_id": "mail", "type": "send-email",
             "data": {"message": {"subject_line": "How was it?", "name": "Review ask"}}},
        ],
    }  # fmt: skip
    created = ok(http.post("/api/flows", json={"data": {"type": "flow", "attributes": {
        "name": "Review", "definition": definition}}}), 201)["data"]  # fmt: skip
    fid = created["id"]
    message_id = created["attributes"]["definition"]["actions"][1]["data"]["message"]["id"]
    patch = {"data": {"type": "flow", "id": fid, "attributes": {"status": "live"}}}
    ok(http.patch(f"/api/flows/{fid}", json=patch))

    place_order(http, "reviewer@example.com")
    pid = profile_id_of(http, "reviewer@example.com")
    assert pid is not None
    advance(server, 3 * 3600 - 60)
    names = [e["relationships"]["metric"]["data"]["id"] for e in events_of(http, pid)]
    assert names == [metric_id(http, "Placed Order")]  # not yet
    advance(server, 60)
    events = events_of(http, pid)
    received = [e for e in events if "$flow" in e["attributes"]["event_properties"]]
    assert len(received) == 1
    props = received[0]["attributes"]["event_properties"]
    assert props == {"$flow": fid, "$message": message_id, "Subject": "How was it?",
                     "Campaign Name": "Review ask"}  # fmt: skip
    placed = next(e for e in events if e not in received)
    assert received[0]["attributes"]["timestamp"] - placed["attributes"]["timestamp"] == 3 * 3600


def deletion(profile: dict[str, Any]) -> dict[str, Any]:
    attributes = {"profile": {"data": profile}}
    return {"data": {"type": "data-privacy-deletion-job", "attributes": attributes}}


def test_a_privacy_deletion_removes_the_profile_and_its_events(
    server: EmulatorServer, http: httpx.Client
) -> None:
    place_order(http, "forget-me@example.com")
    pid = profile_id_of(http, "forget-me@example.com")
    assert pid is not None
    (event,) = events_of(http, pid)
    body = deletion({"type": "profile", "attributes": {"email": "forget-me@example.com"}})
    response = http.post("/api/data-privacy-deletion-jobs", json=body)
    assert (response.status_code, response.content) == (202, b"")
    assert http.get(f"/api/profiles/{pid}").status_code == 200  # the job takes a while
    advance(server, 60)
    assert http.get(f"/api/profiles/{pid}").status_code == 404
    assert http.get(f"/api/events/{event['id']}").status_code == 404
    assert profile_id_of(http, "forget-me@example.com") is None
    assert events_of(http, pid) == []
    two = deletion({"type": "profile", "id": pid, "attributes": {"phone_number": "+15005550006"}})
    error = http.post("/api/data-privacy-deletion-jobs", json=two)
    assert error.status_code == 400
    assert "exactly one identifier" in error.json()["errors"][0]["detail"]


def test_multipart_image_upload(http: httpx.Client) -> None:
    files = {"file": ("badge.png", PNG, "image/png")}
    image = ok(http.post("/api/image-upload", files=files, data={"hidden": "true"}), 201)["data"]
    assert image["attributes"]["name"] == "badge.png"
    assert (image["attributes"]["size"], image["attributes"]["hidden"]) == (len(PNG), True)
    assert ok(http.get(f"/api/images/{image['id']}"))["data"] == image
    served = httpx.get(image["attributes"]["image_url"])  # served by the emulator itself
    assert (served.status_code, served.content) == (200, PNG)
    assert served.headers["content-type"] == "image/png"
    big = PNG + b"\x00" * (5 * 1024 * 1024 - len(PNG) + 1)
    too_big = http.post("/api/image-upload", files={"file": ("big.png", big, "image/png")})
    assert too_big.status_code == 400
    assert "maximum is 5 MB" in too_big.json()["errors"][0]["detail"]
    text = http.post("/api/image-upload", files={"file": ("a.png", b"hello", "image/png")})
    assert text.status_code == 400
    json_body = http.post("/api/image-upload", json={"file": "x"})
    assert json_body.status_code == 415


def test_tags_on_a_list_over_http(http: httpx.Client) -> None:
    lid = ok(http.get("/api/lists"))["data"][0]["id"]
    new_tag = {"data": {"type": "tag", "attributes": {"name": "HTTP"}}}
    tid = ok(http.post("/api/tags", json=new_tag), 201)["data"]["id"]
    link = {"data": [{"type": "list", "id": lid}]}
    ok(http.post(f"/api/tags/{tid}/relationships/lists", json=link), 204)
    assert tid in [t["id"] for t in ok(http.get(f"/api/lists/{lid}/tags"))["data"]]
    assert ok(http.get(f"/api/lists/{lid}/relationships/tags"))["data"] != []
    ok(http.request("DELETE", f"/api/tags/{tid}/relationships/lists", json=link), 204)
    assert tid not in [t["id"] for t in ok(http.get(f"/api/lists/{lid}/tags"))["data"]]


@pytest.mark.parametrize(
    ("kind", "collection", "params"),
    [
        ("list", "/api/lists", {}),
        ("segment", "/api/segments", {}),
        ("campaign", "/api/campaigns", {"filter": "equals(messages.channel,'email')"}),
    ],
)
def test_include_tags_links_and_includes_each_tag(
    http: httpx.Client, kind: str, collection: str, params: dict[str, str]
) -> None:
    target = ok(http.get(collection, params=params))["data"][0]["id"]
    new_tag = {"data": {"type": "tag", "attributes": {"name": f"Included {kind}"}}}
    tid = ok(http.post("/api/tags", json=new_tag), 201)["data"]["id"]
    link = {"data": [{"type": kind, "id": target}]}
    ok(http.post(f"/api/tags/{tid}/relationships/{kind}s", json=link), 204)

    one = ok(http.get(f"{collection}/{target}", params={"include": "tags"}))
    assert {"type": "tag", "id": tid} in one["data"]["relationships"]["tags"]["data"]
    assert tid in [r["id"] for r in one["included"] if r["type"] == "tag"]
    listed = ok(http.get(collection, params={**params, "include": "tags"}))
    mine = next(r for r in listed["data"] if r["id"] == target)
    assert {"type": "tag", "id": tid} in mine["relationships"]["tags"]["data"]
    assert all("data" in r["relationships"]["tags"] for r in listed["data"])
    included = [r["id"] for r in listed["included"] if r["type"] == "tag"]
    assert tid in included
    assert len(included) == len(set(included))
    # without the include the relationship carries links only, as Klaviyo answers it
    plain = ok(http.get(f"{collection}/{target}"))
    assert "data" not in plain["data"]["relationships"]["tags"]
    assert "included" not in plain


def test_the_flow_values_report_counts_what_the_flow_sent(
    server: EmulatorServer, http: httpx.Client
) -> None:
    definition = {
        "triggers": [{"type": "metric", "id": metric_id(http, "Placed Order")}],
        "entry_action_id": "mail",
        "actions": [{"temporary_id": "mail", "type": "send-email",
                     "data": {"message": {"subject_line": "Receipt"}}}],
    }  # fmt: skip
    body = {"data": {"type": "flow", "attributes": {"name": "Receipt", "definition": definition}}}
    fid = ok(http.post("/api/flows", json=body), 201)["data"]["id"]
    live = {"data": {"type": "flow", "id": fid, "attributes": {"status": "live"}}}
    ok(http.patch(f"/api/flows/{fid}", json=live))
    for email in ("r1@example.com", "r2@example.com", "r1@example.com"):
        place_order(http, email)
    advance(server, 1)
    now = datetime.fromisoformat(ok(httpx.get(f"{server.base_url}/_emulator/clock"))["now"])
    report = {"data": {"type": "flow-values-report", "attributes": {
        "statistics": ["recipients", "delivered"],
        "timeframe": {"start": (now - timedelta(days=1)).isoformat(),
                      "end": (now + timedelta(days=1)).isoformat()},
        "conversion_metric_id": metric_id(http, "Placed Order"),
        "filter": f'equals(flow_id,"{fid}")',
    }}}  # fmt: skip
    results = ok(http.post("/api/flow-values-reports", json=report))["data"]["attributes"][
        "results"
    ]
    assert [r["groupings"]["flow_id"] for r in results] == [fid]
    assert results[0]["statistics"]["delivered"] == 3  # one Received Email per order
