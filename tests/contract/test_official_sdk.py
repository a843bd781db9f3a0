"""Klaviyo's official Python SDK (``klaviyo-api`` 25.0.0), pointed at the emulator.

The SDK deserialises every response into its pydantic models, so a session
that runs to the end is evidence that our bodies have the shapes Klaviyo's
own client expects; its errors must be the ones it documents.
``max_retries=0`` keeps its real-time backoff out of the suite.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openapi_client
import pytest
from klaviyo_api import KlaviyoAPI
from openapi_client.exceptions import ApiException, ForbiddenException, UnauthorizedException

from kbridge.emulator import EmulatorConfig, EmulatorServer

pytestmark = pytest.mark.contract

PROFILES = 25


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    config = EmulatorConfig(seed=11, profiles=PROFILES, events=150, rate_limit_factor=None)
    with EmulatorServer(config) as running:
        yield running


def sdk(server: EmulatorServer, key: str | None = None) -> KlaviyoAPI:
    return KlaviyoAPI(key or server.api_key, max_delay=1, max_retries=0, test_host=server.base_url)


def sdk_without_transport_retries(server: EmulatorServer) -> KlaviyoAPI:
    """The SDK with urllib3's own retries off.

    urllib3 (under the SDK) already waits ``Retry-After`` and retries a 429
    three times — proof that our header is usable, but a test would sleep in
    real time; with it off, the SDK's documented 429 error surfaces at once.
    """
    klaviyo = sdk(server)
    klaviyo.configuration.retries = False
    klaviyo.api_client = openapi_client.ApiClient(klaviyo.configuration)
    klaviyo.api_client.default_headers["revision"] = KlaviyoAPI._REVISION
    return klaviyo


def error_code(exc: ApiException) -> str:
    body: dict[str, Any] = json.loads(exc.body)
    return str(body["errors"][0]["code"])


def profile_body(email: str, **attributes: Any) -> dict[str, Any]:
    return {"data": {"type": "profile", "attributes": {"email": email, **attributes}}}


def test_create_get_and_update_a_profile(server: EmulatorServer) -> None:
    klaviyo = sdk(server)
    created = klaviyo.Profiles.create_profile(profile_body("sdk.one@example.com", first_name="Ada"))
    pid = created.data.id
    assert created.data.attributes.email == "sdk.one@example.com"
    fetched = klaviyo.Profiles.get_profile(pid)
    assert fetched.data.attributes.first_name == "Ada"
    updated = klaviyo.Profiles.update_profile(
        pid,
        {"data": {"type": "profile", "id": pid, "attributes": {"last_name": "Lovelace"}}},
    )
    assert updated.data.attributes.last_name == "Lovelace"
    assert updated.data.attributes.first_name == "Ada"


def test_a_duplicate_profile_is_409_with_the_existing_id(server: EmulatorServer) -> None:
    klaviyo = sdk(server)
    first = klaviyo.Profiles.create_profile(profile_body("sdk.dup@example.com"))
    with pytest.raises(ApiException) as caught:
        klaviyo.Profiles.create_profile(profile_body("sdk.dup@example.com"))
    assert caught.value.status == 409
    body = json.loads(caught.value.body)
    assert body["errors"][0]["code"] == "duplicate_profile"
    assert body["errors"][0]["meta"]["duplicate_profile_id"] == first.data.id


def test_paginating_profiles_follows_links_next(server: EmulatorServer) -> None:
    klaviyo = sdk(server)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = klaviyo.Profiles.get_profiles(page_size=7, page_cursor=cursor)
        pages += 1
        seen += [p.id for p in page.data]
        cursor = page.links.next
        if not cursor:
            break
    assert len(seen) == len(set(seen))
    assert len(seen) >= PROFILES
    assert pages == -(-len(seen) // 7)


def test_paginating_events_with_includes(server: EmulatorServer) -> None:
    klaviyo = sdk(server)
    total = 0
    cursor: str | None = None
    while True:
        page = klaviyo.Events.get_events(page_size=40, page_cursor=cursor, include=["metric"])
        total += len(page.data)
        metric_ids = {e.relationships.metric.data.id for e in page.data}
        # the SDK leaves included resources as plain dicts
        assert metric_ids <= {m["id"] for m in page.included or []}
        cursor = page.links.next
        if not cursor:
            break
    assert total >= 100


def test_lists_and_membership(server: EmulatorServer) -> None:
    klaviyo = sdk(server)
    created = klaviyo.Lists.create_list({"data": {"type": "list", "attributes": {"name": "SDK"}}})
    list_id = created.data.id
    profile = klaviyo.Profiles.create_profile(profile_body("sdk.member@example.com"))
    klaviyo.Lists.add_profiles_to_list(
        list_id, {"data": [{"type": "profile", "id": profile.data.id}]}
    )
    members = klaviyo.Lists.get_profile_ids_for_list(list_id)
    assert [m.id for m in members.data] == [profile.data.id]
    assert klaviyo.Lists.get_list(list_id).data.attributes.name == "SDK"


def test_creating_an_event_is_accepted_and_applied(server: EmulatorServer) -> None:
    klaviyo = sdk(server)
    result = klaviyo.Events.create_event(
        {
            "data": {
                "type": "event",
                "attributes": {
                    "properties": {"OrderId": "sdk-1"},
                    "value": 12.5,
                    "metric": {"data": {"type": "metric", "attributes": {"name": "SDK Order"}}},
                    "profile": {
                        "data": {
                            "type": "profile",
                            "attributes": {"email": "sdk.buyer@example.com"},
                        }
                    },
                    "unique_id": "sdk-order-1",
                },
            }
        }
    )
    assert result is None  # 202 without a body
    metrics = klaviyo.Metrics.get_metrics()
    assert "SDK Order" in {m.attributes.name for m in metrics.data}


def test_a_missing_scope_raises_forbidden(server: EmulatorServer) -> None:
    minted = httpx.post(f"{server.base_url}/_emulator/keys", json={"scopes": ["profiles:read"]})
    klaviyo = sdk(server, minted.json()["key"])
    assert klaviyo.Profiles.get_profiles(page_size=1).data
    with pytest.raises(ForbiddenException) as caught:
        klaviyo.Events.get_events()
    assert error_code(caught.value) == "permission_denied"


def test_an_unknown_key_raises_unauthorized(server: EmulatorServer) -> None:
    klaviyo = sdk(server, "pk_" + "0" * 34)
    with pytest.raises(UnauthorizedException) as caught:
        klaviyo.Accounts.get_accounts()
    assert error_code(caught.value) == "not_authenticated"


def test_throttling_raises_429_with_retry_after(
    emulator_factory: Callable[..., EmulatorServer],
) -> None:
    throttled = emulator_factory(profiles=2, events=5, rate_limit_factor=0.02)
    klaviyo = sdk_without_transport_retries(throttled)
    assert klaviyo.Accounts.get_accounts().data[0].type == "account"
    with pytest.raises(ApiException) as caught:
        klaviyo.Accounts.get_accounts()
    assert caught.value.status == 429
    assert error_code(caught.value) == "throttled"
    assert int(caught.value.headers["Retry-After"]) >= 1  # urllib3 headers: any case


def test_events_include_attributions_parse_into_the_sdk_models() -> None:
    # enough history for orders that follow an open or a click
    config = EmulatorConfig(seed=31, profiles=150, events=4000, rate_limit_factor=None)
    with EmulatorServer(config) as busy:
        _check_attributions(sdk(busy))


def _check_attributions(klaviyo: KlaviyoAPI) -> None:
    metrics = klaviyo.Metrics.get_metrics().data
    placed = next(m.id for m in metrics if m.attributes.name == "Placed Order")
    listed = klaviyo.Events.get_events(
        filter=f'equals(metric_id,"{placed}")', include=["attributions"]
    )
    linked = {a.id for e in listed.data for a in e.relationships.attributions.data or []}
    records = [r for r in listed.included or [] if r["type"] == "attribution"]
    assert linked
    assert {r["id"] for r in records} == linked
    for record in records:
        assert record["relationships"]["attributed-event"]["data"]["type"] == "event"


def test_query_metric_aggregates_parses_into_the_sdk_models(server: EmulatorServer) -> None:
    klaviyo = sdk(server)
    metrics = klaviyo.Metrics.get_metrics().data
    placed = next(m.id for m in metrics if m.attributes.name == "Placed Order")
    result = klaviyo.Metrics.query_metric_aggregates(
        {
            "data": {
                "type": "metric-aggregate",
                "attributes": {
                    "metric_id": placed,
                    "measurements": ["count", "sum_value", "unique"],
                    "interval": "week",
                    "timezone": "Europe/Berlin",
                    "filter": [
                        "greater-or-equal(datetime,2026-01-01T00:00:00)",
                        "less-than(datetime,2026-07-01T00:00:00)",
                    ],
                },
            }
        }
    )
    attrs = result.data.attributes
    assert len(attrs.dates) == 27  # Monday 29 Dec 2025 … the week of 29 June 2026
    [row] = attrs.data
    assert len(row.measurements["count"]) == len(attrs.dates)
