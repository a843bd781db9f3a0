"""Campaign, send-job, template and report writes, judged by Klaviyo's spec schemas.

The GETs are covered by ``test_conformance`` (every emulated GET); here a
scripted session sends every write and a few refusals, and each body must
validate against the spec's schema for its status.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kbridge import catalog
from kbridge.emulator import EmulatorConfig, EmulatorServer
from kbridge.testing.plugin import http_client_for
from tests.contract.test_conformance import check

pytestmark = pytest.mark.contract


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    config = EmulatorConfig(seed=5, profiles=60, events=400, rate_limit_factor=None)
    with EmulatorServer(config) as server, http_client_for(server) as http:
        yield http


def send(client: httpx.Client, op_id: str, path: str, body: Any = None, status: int = 0) -> Any:
    op = catalog.get(op_id)
    response = client.request(op.method, path, json=body)
    expected = status or op.success_status
    assert response.status_code == expected, f"{op_id}: {response.status_code} {response.text}"
    return check(op, response)


def campaign_body(list_id: str, **attributes: Any) -> dict[str, Any]:
    definition = {
        "channel": "email",
        "label": "A",
        "content": {"subject": "Hi", "preview_text": "p", "from_label": "Northwind",
                    "from_email": "hello@northwind.example.com"},
    }  # fmt: skip
    attrs = {
        "name": "Conformance",
        "audiences": {"included": [list_id], "excluded": []},
        "send_strategy": {"method": "static", "datetime": "2031-01-01T10:00:00+00:00",
                          "options": {"is_local": False}},
        "send_options": {"use_smart_sending": False},
        "tracking_options": {"add_tracking_params": False, "is_tracking_clicks": True,
                             "is_tracking_opens": True},
        "campaign-messages": {"data": [{"type": "campaign-message",
                                        "attributes": {"definition": definition}}]},
        **attributes,
    }  # fmt: skip
    return {"data": {"type": "campaign", "attributes": attrs}}


def test_campaign_and_template_writes_match_the_spec(client: httpx.Client) -> None:
    list_id = client.get("/api/lists").json()["data"][0]["id"]
    template = send(client, "create_template", "/api/templates", {"data": {"type": "template",
        "attributes": {"name": "T", "editor_type": "CODE", "html": "<p>{{ name }}</p>",
                       "text": "{{ name }}"}}})  # fmt: skip
    tid = template["data"]["id"]
    send(client, "update_template", f"/api/templates/{tid}",
         {"data": {"type": "template", "id": tid, "attributes": {"name": "T2"}}})  # fmt: skip
    rendered = send(client, "render_template", "/api/template-render", {"data": {
        "type": "template", "id": tid, "attributes": {"context": {"name": "Ada"}}}})  # fmt: skip
    assert rendered["data"]["attributes"]["text"] == "Ada"
    clone_body = {"data": {"type": "template", "id": tid, "attributes": {"name": "C"}}}
    clone = send(client, "clone_template", "/api/template-clone", clone_body)
    send(client, "delete_template", f"/api/templates/{clone['data']['id']}")

    created = send(client, "create_campaign", "/api/campaigns", campaign_body(list_id))
    cid = created["data"]["id"]
    mid = created["data"]["relationships"]["campaign-messages"]["data"][0]["id"]
    for strategy in (
        {"method": "throttled", "datetime": "2031-01-01T10:00:00+00:00", "throttle_percentage": 20},
        {"method": "smart_send_time", "date": "2031-01-02"},
        {"method": "immediate"},
        {"method": "static", "datetime": "2031-01-01T10:00:00+00:00",
         "options": {"is_local": True, "send_past_recipients_immediately": True}},
    ):  # fmt: skip
        body = {"data": {"type": "campaign", "id": cid, "attributes": {"send_strategy": strategy}}}
        updated = send(client, "update_campaign", f"/api/campaigns/{cid}", body)
        assert updated["data"]["attributes"]["send_strategy"]["method"] == strategy["method"]
    definition = {"channel": "email", "content": {"subject": "New"}}
    message = {"type": "campaign-message", "id": mid, "attributes": {"definition": definition}}
    send(client, "update_campaign_message", f"/api/campaign-messages/{mid}", {"data": message})
    send(client, "assign_template_to_campaign_message", "/api/campaign-message-assign-template",
         {"data": {"type": "campaign-message", "id": mid, "relationships": {
             "template": {"data": {"type": "template", "id": tid}}}}})  # fmt: skip
    for op in ("get_campaign_message", "get_template_for_campaign_message",
               "get_template_id_for_campaign_message"):  # fmt: skip
        path = catalog.get(op).path.replace("{id}", mid)
        check(catalog.get(op), client.get(path))
    clone = {"data": {"type": "campaign", "id": cid, "attributes": {"new_name": "Copy"}}}
    send(client, "create_campaign_clone", "/api/campaign-clone", clone)
    estimate = {"data": {"type": "campaign-recipient-estimation-job", "id": cid}}
    send(client, "refresh_campaign_recipient_estimation", "/api/campaign-recipient-estimation-jobs",
         estimate)  # fmt: skip
    job = {"data": {"type": "campaign-send-job", "id": cid}}
    send(client, "send_campaign", "/api/campaign-send-jobs", job)
    send(client, "get_campaign_send_job", f"/api/campaign-send-jobs/{cid}")
    action = {"data": {"type": "campaign-send-job", "id": cid, "attributes": {"action": "revert"}}}
    send(client, "cancel_campaign_send", f"/api/campaign-send-jobs/{cid}", action)
    send(client, "delete_campaign", f"/api/campaigns/{cid}")

    sms = campaign_body(list_id)
    sms["data"]["attributes"]["campaign-messages"]["data"][0]["attributes"]["definition"] = {
        "channel": "sms",
        "content": {"body": "Hi {{ first_name }}"},
    }
    sms["data"]["attributes"]["tracking_options"] = {"add_tracking_params": False}
    created = send(client, "create_campaign", "/api/campaigns", sms)
    mid = created["data"]["relationships"]["campaign-messages"]["data"][0]["id"]
    check(catalog.get("get_campaign_message"), client.get(f"/api/campaign-messages/{mid}"))


def test_reports_match_the_spec(client: httpx.Client) -> None:
    metrics = {m["attributes"]["name"]: m["id"] for m in client.get("/api/metrics").json()["data"]}
    for op, rtype in (("query_campaign_values", "campaign-values-report"),
                      ("query_flow_values", "flow-values-report")):  # fmt: skip
        body = {"data": {"type": rtype, "attributes": {
            "statistics": ["recipients", "opens", "open_rate", "conversions", "conversion_value"],
            "timeframe": {"key": "last_365_days"},
            "conversion_metric_id": metrics["Placed Order"]}}}  # fmt: skip
        report = send(client, op, catalog.get(op).path, body)
        assert isinstance(report["data"]["attributes"]["results"], list)
    body = {"data": {"type": "flow-series-report", "attributes": {
        "statistics": ["recipients", "opens", "open_rate", "conversion_value"],
        "timeframe": {"key": "last_30_days"}, "interval": "daily",
        "conversion_metric_id": metrics["Placed Order"]}}}  # fmt: skip
    report = send(client, "query_flow_series", "/api/flow-series-reports", body)
    attributes = report["data"]["attributes"]
    assert len(attributes["date_times"]) == 30
    for row in attributes["results"]:
        assert all(len(v) == 30 for v in row["statistics"].values())
    body["data"]["attributes"]["interval"] = "hourly"
    send(client, "query_flow_series", "/api/flow-series-reports", body, status=400)


def test_refusals_match_the_spec(client: httpx.Client) -> None:
    list_id = client.get("/api/lists").json()["data"][0]["id"]
    check(catalog.get("get_campaigns"), client.get("/api/campaigns"))
    bad = campaign_body(list_id, send_strategy={"method": "throttled",
                        "datetime": "2031-01-01T10:00:00Z", "throttle_percentage": 7})  # fmt: skip
    send(client, "create_campaign", "/api/campaigns", bad, status=400)
    send(client, "query_campaign_values", "/api/campaign-values-reports", {"data": {
        "type": "campaign-values-report", "attributes": {"statistics": ["opens"],
        "timeframe": {"key": "last_30_days"}}}}, status=400)  # fmt: skip
    send(client, "get_template", "/api/templates/nope00", status=404)
