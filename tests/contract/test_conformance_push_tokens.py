"""Push tokens, judged by the schemas in Klaviyo's OpenAPI spec.

A scripted session registers tokens (one for a new profile, one for a known one, one
twice), then reads them every way the API offers, with and without ``include``, and
deletes one; every body, errors included, must validate against the spec's schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kbridge import catalog
from kbridge.emulator import EmulatorConfig, EmulatorServer
from kbridge.emulator.backend import EmulatorBackend
from kbridge.emulator.simclock import SimClock
from kbridge.testing.plugin import http_client_for
from tests.contract.test_conformance_flows_images_tags import check, expect_400, send

pytestmark = pytest.mark.contract

OPS = (
    "get_push_tokens",
    "create_push_token",
    "get_push_token",
    "delete_push_token",
    "get_profile_for_push_token",
    "get_profile_id_for_push_token",
    "get_push_tokens_for_profile",
    "get_push_token_ids_for_profile",
)


def token_body(token: str, profile: dict[str, Any], **extra: Any) -> dict[str, Any]:
    attrs = {"token": token, "platform": "ios", "vendor": "apns",
             "profile": {"data": {"type": "profile", **profile}}, **extra}  # fmt: skip
    return {"data": {"type": "push-token", "attributes": attrs}}


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    config = EmulatorConfig(seed=4, profiles=10, events=50, rate_limit_factor=None)
    with EmulatorServer(config) as server, http_client_for(server) as client:
        yield client


def test_every_push_token_operation_is_emulated() -> None:
    implemented = EmulatorBackend(EmulatorConfig(profiles=0, events=0), SimClock()).implemented
    assert set(OPS) <= set(implemented)


def test_push_tokens_match_the_spec(http: httpx.Client) -> None:
    seeded = send(http, "get_push_tokens", "/api/push-tokens")["data"]
    assert len(seeded) == 3  # a generated account's first profiles have a device
    with_device = {r["relationships"]["profile"]["data"]["id"] for r in seeded}
    known = next(
        p["id"] for p in http.get("/api/profiles").json()["data"] if p["id"] not in with_device
    )
    new = {"attributes": {"email": "device.owner@example.com"}}
    assert send(http, "create_push_token", "/api/push-tokens", token_body("tok-a", new)) is None
    send(http, "create_push_token", "/api/push-tokens",
         token_body("tok-b", {"id": known}, platform="android", vendor="fcm"))  # fmt: skip
    # the same token again updates it (Klaviyo upserts by token)
    send(http, "create_push_token", "/api/push-tokens",
         token_body("tok-b", {"id": known}, platform="android", vendor="fcm",
                    enablement_status="DENIED"))  # fmt: skip

    listed = send(http, "get_push_tokens", "/api/push-tokens", params={"include": "profile"})
    tokens = {r["attributes"]["token"]: r for r in listed["data"]}
    assert set(tokens) == {"tok-a", "tok-b"} | {r["attributes"]["token"] for r in seeded}
    assert tokens["tok-b"]["attributes"]["enablement_status"] == "DENIED"
    assert tokens["tok-a"]["attributes"]["enablement_status"] == "AUTHORIZED"
    owner = tokens["tok-a"]["relationships"]["profile"]["data"]["id"]
    assert {r["id"] for r in listed["included"]} == {owner, known} | with_device
    emails = {r["attributes"]["email"] for r in listed["included"]}
    assert "device.owner@example.com" in emails

    android = send(http, "get_push_tokens", "/api/push-tokens",
                   params={"filter": "equals(platform,'android')"})  # fmt: skip
    assert {r["attributes"]["token"] for r in android["data"]} == {"tok-b"} | {
        r["attributes"]["token"] for r in seeded if r["attributes"]["platform"] == "android"
    }
    mine = send(http, "get_push_tokens", "/api/push-tokens",
                params={"filter": f"equals(profile.id,'{known}')"})  # fmt: skip
    assert [r["attributes"]["token"] for r in mine["data"]] == ["tok-b"]

    bid = tokens["tok-b"]["id"]
    one = send(http, "get_push_token", f"/api/push-tokens/{bid}", params={"include": "profile"})
    assert one["included"][0]["id"] == known
    prof = send(http, "get_profile_for_push_token", f"/api/push-tokens/{bid}/profile")
    assert prof["data"]["id"] == known
    rel = send(
        http, "get_profile_id_for_push_token", f"/api/push-tokens/{bid}/relationships/profile"
    )
    assert rel["data"] == {"type": "profile", "id": known}
    of_profile = send(http, "get_push_tokens_for_profile", f"/api/profiles/{known}/push-tokens")
    assert [r["id"] for r in of_profile["data"]] == [bid]
    ids = send(http, "get_push_token_ids_for_profile",
               f"/api/profiles/{known}/relationships/push-tokens")  # fmt: skip
    assert ids["data"] == [{"type": "push-token", "id": bid}]

    assert send(http, "delete_push_token", f"/api/push-tokens/{bid}") is None
    gone = http.get(f"/api/push-tokens/{bid}")
    assert gone.status_code == 404
    check(catalog.get("get_push_token"), gone)
    left = send(http, "get_push_tokens_for_profile", f"/api/profiles/{known}/push-tokens")
    assert left["data"] == []


def test_push_token_errors_are_spec_shaped(http: httpx.Client) -> None:
    op, path = "create_push_token", "/api/push-tokens"
    who = {"attributes": {"email": "x@example.com"}}
    assert "platform" in expect_400(http, op, path, token_body("t", who, platform="web"))
    assert "vendor" in expect_400(http, op, path, token_body("t", who, vendor="gcm"))
    assert "token" in expect_400(http, op, path, token_body("", who))
    assert "identifier" in expect_400(http, op, path, token_body("t", {"attributes": {}}))
    assert "does not exist" in expect_400(http, op, path, token_body("t", {"id": "NOPE"}))
    missing = http.get("/api/profiles/NOPE/push-tokens")
    assert missing.status_code == 404
    check(catalog.get("get_push_tokens_for_profile"), missing)
