"""Campaign sends over loopback HTTP: the control plane's outbox and senders, reset,
and the reporting rate limits Klaviyo publishes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kbridge.emulator import EmulatorConfig, EmulatorServer
from kbridge.testing.plugin import http_client_for

pytestmark = pytest.mark.integration

DEFAULT_SENDER = "hello@northwind.example.com"


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(seed=9, profiles=80, events=400)) as running:
        yield running


@pytest.fixture
def http(server: EmulatorServer) -> Iterator[httpx.Client]:
    with http_client_for(server) as client:
        client.post("/_emulator/reset")
        yield client


def campaign(http: httpx.Client, sender: str) -> str:
    lists = http.get("/api/lists").json()["data"]
    list_id = next(lst["id"] for lst in lists if lst["attributes"]["name"] == "Newsletter")
    definition = {"channel": "email", "label": "A",
                  "content": {"subject": "Hello", "from_email": sender}}  # fmt: skip
    body: dict[str, Any] = {"data": {"type": "campaign", "attributes": {
        "name": "Over HTTP", "audiences": {"included": [list_id]},
        "send_strategy": {"method": "immediate"},
        "campaign-messages": {"data": [{"type": "campaign-message",
                                        "attributes": {"definition": definition}}]}}}}  # fmt: skip
    r = http.post("/api/campaigns", json=body)
    assert r.status_code == 201, r.text
    cid: str = r.json()["data"]["id"]
    r = http.post(
        "/api/campaign-send-jobs", json={"data": {"type": "campaign-send-job", "id": cid}}
    )
    assert r.status_code == 202, r.text
    http.post("/_emulator/clock", json={"advance_seconds": 1})
    return cid


def status(http: httpx.Client, cid: str) -> str:
    return str(http.get(f"/api/campaigns/{cid}").json()["data"]["attributes"]["status"])


def test_senders_gate_sending_and_the_outbox_shows_what_went_out(http: httpx.Client) -> None:
    outbox = http.get("/_emulator/outbox").json()
    assert outbox == {"messages": [], "failures": [], "verified_senders": [DEFAULT_SENDER]}

    refused = campaign(http, "promo@other.example")
    assert status(http, refused) == "Cancelled: Misconfigured"
    (failure,) = http.get("/_emulator/outbox", params={"campaign_id": refused}).json()["failures"]
    assert failure["status"] == "Cancelled: Misconfigured"
    assert "promo@other.example" in failure["reason"]

    r = http.post("/_emulator/senders", json={"email": "Promo@Other.example"})
    assert r.status_code == 201
    assert r.json() == {"email": "promo@other.example", "verified": True}
    sent = campaign(http, "promo@other.example")
    assert status(http, sent) == "Sent"
    messages = http.get("/_emulator/outbox", params={"campaign_id": sent}).json()["messages"]
    assert messages
    assert {m["from_email"] for m in messages} == {"promo@other.example"}
    assert {m["campaign_id"] for m in messages} == {sent}
    assert all(m["to"] and m["sent_at"] for m in messages)

    http.post("/_emulator/reset")
    assert http.get("/_emulator/outbox").json()["verified_senders"] == [DEFAULT_SENDER]


@pytest.mark.parametrize("body", [{}, {"email": 3}, {"email": "nobody"}])
def test_senders_refuse_what_is_not_an_address(http: httpx.Client, body: dict[str, Any]) -> None:
    r = http.post("/_emulator/senders", json=body)
    assert r.status_code == 400
    assert "email" in r.json()["error"]


def test_reports_are_held_to_klaviyos_published_limits(http: httpx.Client) -> None:
    """1/s burst and 2/m steady (limits run on the monotonic clock, not the simulated one)."""
    metrics = {m["attributes"]["name"]: m["id"] for m in http.get("/api/metrics").json()["data"]}
    body = {"data": {"type": "campaign-values-report", "attributes": {
        "statistics": ["recipients"], "timeframe": {"key": "last_30_days"},
        "conversion_metric_id": metrics["Placed Order"]}}}  # fmt: skip
    first = http.post("/api/campaign-values-reports", json=body)
    assert first.status_code == 200
    assert first.headers["ratelimit-limit"] == "2"
    assert first.headers["ratelimit-remaining"] == "1"
    second = http.post("/api/campaign-values-reports", json=body)
    assert second.status_code == 429
    assert second.json()["errors"][0]["code"] == "throttled"
    assert int(second.headers["retry-after"]) >= 1
