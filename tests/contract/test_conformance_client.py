"""Client endpoints (``/client/…``): the account's public key as ``company_id``, no private key.

What a browser or app sends must become real data of the account, visible
through the private API: a client event is an event of ``/api/events``, a
client profile a profile, a client subscription a list member. Every answer,
errors included, must match the spec; each operation spends its own limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kbridge import catalog
from kbridge.emulator import EmulatorConfig, EmulatorServer
from kbridge.testing.plugin import http_client_for
from tests.contract.test_conformance_flows_images_tags import check

pytestmark = pytest.mark.contract


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    config = EmulatorConfig(seed=21, profiles=20, events=100, rate_limit_factor=None)
    with EmulatorServer(config) as running:
        yield running


@pytest.fixture(scope="module")
def private(server: EmulatorServer) -> Iterator[httpx.Client]:
    with http_client_for(server) as http:
        yield http


@pytest.fixture(scope="module")
def company(private: httpx.Client) -> str:
    key: str = private.get("/api/accounts").json()["data"][0]["attributes"]["public_api_key"]
    return key


@pytest.fixture(scope="module")
def public(server: EmulatorServer) -> Iterator[httpx.Client]:
    # what a browser sends: no Authorization header at all
    headers = {"revision": catalog.get("create_client_event").revision}
    with httpx.Client(base_url=server.base_url, headers=headers) as http:
        yield http


def post(http: httpx.Client, op_id: str, company: str, data: dict[str, Any]) -> httpx.Response:
    op = catalog.get(op_id)
    response = http.post(op.path, params={"company_id": company}, json={"data": data})
    check(op, response)
    return response


def event(metric: str, email: str, **attrs: Any) -> dict[str, Any]:
    return {
        "type": "event",
        "attributes": {
            "properties": {"page": "/shoes"},
            "metric": {"data": {"type": "metric", "attributes": {"name": metric}}},
            "profile": {"data": {"type": "profile", "attributes": {"email": email}}},
            **attrs,
        },
    }


def events_named(http: httpx.Client, metric: str) -> list[dict[str, Any]]:
    metrics = http.get("/api/metrics").json()["data"]
    ids = [m["id"] for m in metrics if m["attributes"]["name"] == metric]
    assert len(ids) == 1, f"metric {metric!r}: {ids}"
    found = http.get("/api/events", params={"filter": f"equals(metric_id,'{ids[0]}')"})
    data: list[dict[str, Any]] = found.json()["data"]
    return data


def test_a_client_event_is_an_event_of_the_account(
    public: httpx.Client, private: httpx.Client, company: str
) -> None:
    sent = post(public, "create_client_event", company,
                event("Viewed Shoes", "walker@example.com", value=12.5))  # fmt: skip
    assert sent.status_code == 202
    [stored] = events_named(private, "Viewed Shoes")
    assert stored["attributes"]["event_properties"]["page"] == "/shoes"
    profiles = private.get("/api/profiles",
                           params={"filter": "equals(email,'walker@example.com')"})  # fmt: skip
    assert len(profiles.json()["data"]) == 1


def bulk_body(metric: str, email: str, count: int) -> dict[str, Any]:
    rows = [
        {"type": "event", "attributes": {
            "properties": {"n": k},
            "metric": {"data": {"type": "metric", "attributes": {"name": metric}}}}}
        for k in range(count)
    ]  # fmt: skip
    return {
        "type": "event-bulk-create",
        "attributes": {
            "profile": {"data": {"type": "profile", "attributes": {"email": email}}},
            "events": {"data": rows},
        },
    }


def test_client_bulk_events_land_through_a_job(
    public: httpx.Client, private: httpx.Client, company: str
) -> None:
    data = bulk_body("Tapped Banner", "bulk@example.com", 3)
    assert post(public, "bulk_create_client_events", company, data).status_code == 202
    private.post("/_emulator/clock", json={"advance_seconds": 3600})
    assert len(events_named(private, "Tapped Banner")) == 3


def test_client_profile_and_subscription(
    public: httpx.Client, private: httpx.Client, company: str
) -> None:
    profile = {"type": "profile", "attributes": {"email": "ann@example.com", "first_name": "Ann"}}
    assert post(public, "create_client_profile", company, profile).status_code == 202
    found = private.get("/api/profiles", params={"filter": "equals(email,'ann@example.com')"})
    [ann] = found.json()["data"]
    assert ann["attributes"]["first_name"] == "Ann"
    list_id = private.get("/api/lists").json()["data"][0]["id"]
    subscription = {
        "type": "subscription",
        "attributes": {
            "custom_source": "Footer form",
            "profile": {"data": {"type": "profile", "attributes": {"email": "sub@example.com"}}},
        },
        "relationships": {"list": {"data": {"type": "list", "id": list_id}}},
    }
    assert post(public, "create_client_subscription", company, subscription).status_code == 202
    private.post("/_emulator/clock", json={"advance_seconds": 3600})
    params = {"filter": "any(email,['sub@example.com'])",
              "additional-fields[profile]": "subscriptions"}  # fmt: skip
    members = private.get(f"/api/lists/{list_id}/profiles", params=params).json()["data"]
    assert len(members) == 1
    consent = members[0]["attributes"]["subscriptions"]
    assert consent["email"]["marketing"]["consent"] == "SUBSCRIBED"


def test_client_endpoints_take_company_id_and_refuse_private_keys(
    server: EmulatorServer, public: httpx.Client, company: str
) -> None:
    op = catalog.get("create_client_event")
    body = {"data": event("Viewed Shoes", "x@example.com")}
    missing = public.post(op.path, json=body)
    assert missing.status_code == 400
    assert check(op, missing)["errors"][0]["source"]["parameter"] == "company_id"
    unknown = public.post(op.path, params={"company_id": "NOPE00"}, json=body)
    assert unknown.status_code == 400
    check(op, unknown)
    with http_client_for(server) as keyed:
        refused = keyed.post(op.path, params={"company_id": company}, json=body)
    assert refused.status_code == 401
    check(op, refused)
    bad = event("Viewed Shoes", "x@example.com")
    del bad["attributes"]["metric"]
    invalid = public.post(op.path, params={"company_id": company}, json={"data": bad})
    assert invalid.status_code == 400
    check(op, invalid)


def test_each_client_operation_spends_its_own_limit() -> None:
    # scaled so the per-minute window binds (3 bulk requests a minute), not the 1-second
    # burst window, which real time refills under a loaded machine
    config = EmulatorConfig(seed=21, profiles=5, events=10, rate_limit_factor=0.02)
    revision = {"revision": catalog.get("create_client_event").revision}
    with (
        EmulatorServer(config) as server,
        httpx.Client(base_url=server.base_url, headers=revision) as http,
        http_client_for(server) as private,
    ):
        company = private.get("/api/accounts").json()["data"][0]["attributes"]["public_api_key"]
        op = catalog.get("bulk_create_client_events")
        body = {"data": bulk_body("Tapped Banner", "r@example.com", 1)}
        statuses = [
            http.post(op.path, params={"company_id": company}, json=body).status_code
            for _ in range(5)
        ]
        assert statuses[0] == 202
        assert 429 in statuses
        refused = http.post(op.path, params={"company_id": company}, json=body)
        assert refused.status_code == 429
        check(op, refused)
        # the single-event endpoint's window is its own, and so is the private API's
        event_op = catalog.get("create_client_event")
        other = http.post(event_op.path, params={"company_id": company},
                          json={"data": event("Viewed Shoes", "r@example.com")})  # fmt: skip
        assert other.status_code == 202
        assert private.get("/api/metrics").status_code == 200


def test_client_geofences_list_is_spec_shaped(public: httpx.Client, company: str) -> None:
    op = catalog.get("get_client_geofences")
    response = public.get(op.path, params={"company_id": company, "page[size]": "5"})
    assert response.status_code == 200
    assert check(op, response)["data"] == []


def test_company_id_picks_the_account_it_names() -> None:
    config = EmulatorConfig(seed=21, profiles=5, events=10, accounts=2, rate_limit_factor=None)
    revision = {"revision": catalog.get("create_client_event").revision}
    with (
        EmulatorServer(config) as server,
        httpx.Client(base_url=server.base_url, headers=revision) as http,
        http_client_for(server, key=server.api_key_of(1)) as second,
    ):
        company = second.get("/api/accounts").json()["data"][0]["attributes"]["public_api_key"]
        body = {"data": event("Second Account Event", "two@example.com")}
        sent = http.post("/client/events", params={"company_id": company}, json=body)
        assert sent.status_code == 202
        assert len(events_named(second, "Second Account Event")) == 1
        with http_client_for(server) as first:
            names = [m["attributes"]["name"] for m in first.get("/api/metrics").json()["data"]]
        assert "Second Account Event" not in names
