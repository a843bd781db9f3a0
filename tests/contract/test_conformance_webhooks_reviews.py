"""Webhooks, reviews and conversation messages, judged by Klaviyo's OpenAPI spec.

A scripted session creates and edits a webhook, moderates a review and posts
into an SMS conversation, then calls every GET of the three tags, plain and
with each ``include``. Every body, the errors' included, must validate
against the spec's schema for its status.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kbridge import catalog
from kbridge.catalog import Operation
from kbridge.emulator import EmulatorConfig, EmulatorServer, SimClock
from kbridge.emulator.backend import EmulatorBackend
from kbridge.emulator.backend.reviews import ConversationsBackend
from kbridge.testing.plugin import http_client_for
from tests.contract.test_conformance_flows_images_tags import check, expect_400, send

pytestmark = pytest.mark.contract

TAGS = ("Webhooks", "Reviews", "Conversations")
CONFIG = EmulatorConfig(seed=12, profiles=30, events=300, rate_limit_factor=None)


def webhook_body(**attrs: Any) -> dict[str, Any]:
    base = {"name": "Orders", "endpoint_url": "https://hooks.example.com/k?token=s3cret",
            "secret_key": "whsec-1"}  # fmt: skip
    return {
        "data": {
            "type": "webhook",
            "attributes": {**base, **attrs},
            "relationships": {"webhook-topics": {"data": [
                {"type": "webhook-topic", "id": "event:klaviyo.opened_email"}]}},
        }
    }  # fmt: skip


@pytest.fixture(scope="module")
def session() -> Iterator[tuple[httpx.Client, EmulatorBackend, dict[str, str]]]:
    backend = EmulatorBackend(CONFIG, SimClock())
    with EmulatorServer(CONFIG, backend=backend) as server, http_client_for(server) as http:
        ids = {"webhook-topic": "event:klaviyo.sent_sms"}
        ids["webhook"] = send(http, "create_webhook", "/api/webhooks", webhook_body())["data"]["id"]
        ids["review"] = http.get("/api/reviews").json()["data"][0]["id"]
        yield http, backend, ids


def _ops() -> list[Operation]:
    return [op for tag in TAGS for op in catalog.by_tag(tag)]


def test_every_webhook_review_and_conversation_operation_is_emulated() -> None:
    backend = EmulatorBackend(EmulatorConfig(profiles=0, events=0), SimClock())
    assert {op.operation_id for op in _ops()} <= backend.implemented


@pytest.mark.parametrize(
    "op", [op for op in _ops() if op.method == "GET"], ids=lambda op: op.operation_id
)
def test_every_get_matches_the_spec(
    session: tuple[httpx.Client, EmulatorBackend, dict[str, str]], op: Operation
) -> None:
    http, _, ids = session
    kind = op.path.split("/")[2][:-1]
    path = op.path.replace("{id}", ids[kind])
    for extra in [{}] + [{"include": inc} for inc in op.include]:
        response = http.get(path, params=extra)
        assert response.status_code == 200, f"{op.operation_id}: {response.text[:300]}"
        body = check(op, response)
        assert body["data"], f"{op.operation_id} {extra}: empty data"
        if extra and kind == "webhook":
            assert body.get("included"), f"{op.operation_id} {extra}: nothing included"


def test_webhook_lifecycle_hides_the_secret(
    session: tuple[httpx.Client, EmulatorBackend, dict[str, str]],
) -> None:
    http, _, _ = session
    created = send(http, "create_webhook", "/api/webhooks", webhook_body(name="Temp"))["data"]
    wid = created["id"]
    assert created["attributes"]["endpoint_url"] == "https://hooks.example.com/k"
    assert created["attributes"]["enabled"] is True
    listed = http.get("/api/webhooks").text
    assert "s3cret" not in listed
    assert "whsec" not in listed
    topic = {"type": "webhook-topic", "id": "event:klaviyo.clicked_sms"}
    patch = {"data": {"type": "webhook", "id": wid, "attributes": {"enabled": False},
                      "relationships": {"webhook-topics": {"data": [topic]}}}}  # fmt: skip
    updated = send(http, "update_webhook", f"/api/webhooks/{wid}", patch)["data"]
    assert updated["attributes"]["enabled"] is False
    linked = http.get(f"/api/webhooks/{wid}", params={"include": "webhook-topics"}).json()
    assert linked["data"]["relationships"]["webhook-topics"]["data"] == [
        {"type": "webhook-topic", "id": "event:klaviyo.clicked_sms"}
    ]
    assert send(http, "delete_webhook", f"/api/webhooks/{wid}") is None
    gone = http.get(f"/api/webhooks/{wid}")
    assert gone.status_code == 404
    check(catalog.get("get_webhook"), gone)


def test_webhook_errors_are_spec_shaped(
    session: tuple[httpx.Client, EmulatorBackend, dict[str, str]],
) -> None:
    http, _, _ = session
    plain = webhook_body(endpoint_url="http://hooks.example.com/k")
    assert "https" in expect_400(http, "create_webhook", "/api/webhooks", plain)
    unknown = webhook_body()
    unknown["data"]["relationships"]["webhook-topics"]["data"][0]["id"] = "event:nope"
    assert "event:nope" in expect_400(http, "create_webhook", "/api/webhooks", unknown)
    no_secret = webhook_body()
    del no_secret["data"]["attributes"]["secret_key"]
    assert "secret_key" in expect_400(http, "create_webhook", "/api/webhooks", no_secret)
    missing = http.get("/api/webhook-topics/event:klaviyo.nope")
    assert missing.status_code == 404
    check(catalog.get("get_webhook_topic"), missing)
    for k in range(20):  # the account's cap stops the runaway loop
        response = http.post("/api/webhooks", json=webhook_body(name=f"n{k}"))
        if response.status_code != 201:
            break
    assert response.status_code == 400
    assert "at most" in check(catalog.get("create_webhook"), response)["errors"][0]["detail"]


def test_reviews_filter_sort_and_moderate(
    session: tuple[httpx.Client, EmulatorBackend, dict[str, str]],
) -> None:
    http, _, ids = session
    every = http.get("/api/reviews", params={"page[size]": "100"}).json()["data"]
    assert len(every) == 15
    best = http.get("/api/reviews", params={"sort": "-rating", "page[size]": "1"}).json()
    assert best["data"][0]["attributes"]["rating"] == max(
        r["attributes"]["rating"] or 0 for r in every
    )
    assert best["links"]["next"]
    fives = http.get("/api/reviews", params={"filter": "equals(rating,5)"}).json()["data"]
    assert {r["id"] for r in fives} == {r["id"] for r in every if r["attributes"]["rating"] == 5}
    questions = http.get("/api/reviews", params={"filter": "equals(review_type,'question')"})
    assert all(r["attributes"]["rating"] is None for r in questions.json()["data"])
    assert questions.json()["data"]
    rid = ids["review"]
    reason = {"reason": "other", "status_explanation": "duplicate"}
    status = {"value": "rejected", "rejection_reason": reason}
    reject = {"data": {"type": "review", "id": rid, "attributes": {"status": status}}}
    done = send(http, "update_review", f"/api/reviews/{rid}", reject)["data"]["attributes"]
    assert done["status"]["rejection_reason"] == {
        "reason": "other",
        "status_explanation": "duplicate",
    }
    rejected = http.get("/api/reviews", params={"filter": "equals(status,'rejected')"}).json()
    assert [r["id"] for r in rejected["data"]] == [rid]
    bare = {"data": {"type": "review", "id": rid, "attributes": {"status": {"value": "rejected"}}}}
    assert "rejection_reason" in expect_400(http, "update_review", f"/api/reviews/{rid}", bare)
    too_big = http.get("/api/reviews", params={"page[size]": "101"})
    assert too_big.status_code == 400
    check(catalog.get("get_reviews"), too_big)


def test_conversation_message_reaches_the_profiles_phone(
    session: tuple[httpx.Client, EmulatorBackend, dict[str, str]],
) -> None:
    http, backend, _ = session
    texter = next(p for p in backend.store.profiles if p.phone_number)
    body = {"data": {"type": "conversation-message", "attributes": {"body": "On its way!"},
                     "relationships": {"conversation": {"data": {
                         "type": "conversation", "id": texter.id}}}}}  # fmt: skip
    path = "/api/conversation-messages"
    assert send(http, "create_conversation_message", path, body) is None
    conv = backend._routes["create_conversation_message"].__self__  # type: ignore[attr-defined]
    assert isinstance(conv, ConversationsBackend)
    assert [(m.phone_number, m.body) for m in conv.sent_messages] == [
        (texter.phone_number, "On its way!")
    ]
    body["data"]["attributes"]["body"] = ""
    expect_400(http, "create_conversation_message", path, body)
    body["data"]["attributes"]["body"] = "hi"
    body["data"]["relationships"]["conversation"]["data"]["id"] = "nope"
    missing = http.post(path, json=body)
    assert missing.status_code == 404
    check(catalog.get("create_conversation_message"), missing)


def test_scopes_guard_webhooks() -> None:
    with EmulatorServer(CONFIG) as server:
        minted = httpx.post(f"{server.base_url}/_emulator/keys", json={"scopes": ["reviews:read"]})
        with http_client_for(server, key=minted.json()["key"]) as http:
            assert http.get("/api/reviews").status_code == 200
            denied = http.get("/api/webhooks")
            assert denied.status_code == 403
            check(catalog.get("get_webhooks"), denied)
            write = http.patch("/api/reviews/x", json={"data": {}})
            assert write.status_code == 403
