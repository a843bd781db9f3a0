"""The issue's official-SDK session: template → campaign → schedule/cancel/revert →
schedule → clock → campaign-values report, checked against the outbox and events.

``klaviyo-api`` 25.0.0 deserialises every answer into its models, so the
session running to the end shows the emulator's campaign, message, send-job,
template and report bodies have the shapes Klaviyo's own client expects.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from klaviyo_api import KlaviyoAPI
from openapi_client.exceptions import ApiException

from kbridge.emulator import EmulatorConfig, EmulatorServer
from kbridge.testing.plugin import http_client_for

pytestmark = pytest.mark.contract

SENDER = "hello@northwind.example.com"


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    config = EmulatorConfig(seed=21, profiles=120, events=600, rate_limit_factor=None)
    with EmulatorServer(config) as running:
        yield running


@pytest.fixture(scope="module")
def http(server: EmulatorServer) -> Iterator[httpx.Client]:
    with http_client_for(server) as client:
        yield client


def sdk(server: EmulatorServer) -> KlaviyoAPI:
    return KlaviyoAPI(server.api_key, max_delay=1, max_retries=0, test_host=server.base_url)


def _now(http: httpx.Client) -> datetime:
    return datetime.fromisoformat(http.get("/_emulator/clock").json()["now"])


def _campaign_body(name: str, list_id: str, send_at: datetime) -> dict[str, Any]:
    return {
        "data": {
            "type": "campaign",
            "attributes": {
                "name": name,
                "audiences": {"included": [list_id], "excluded": []},
                "send_strategy": {
                    "method": "static",
                    "datetime": send_at.isoformat(),
                    "options": {"is_local": False},
                },
                "campaign-messages": {
                    "data": [
                        {
                            "type": "campaign-message",
                            "attributes": {
                                "definition": {
                                    "channel": "email",
                                    "label": "Main",
                                    "content": {
                                        "subject": "Hello {{ first_name }}",
                                        "preview_text": "New arrivals",
                                        "from_email": SENDER,
                                        "from_label": "Northwind",
                                    },
                                }
                            },
                        }
                    ]
                },
            },
        }
    }


def _create_campaign(
    http: httpx.Client, name: str, list_id: str, send_at: datetime
) -> tuple[str, str]:
    """POST /api/campaigns in the spec's (2026-07-15) shape.

    The SDK's ``create_campaign`` speaks its newer revision's "omnicampaign"
    body (see test_campaigns_sdk_revision); this session creates campaigns in
    the spec's shape over plain HTTP to set a static send time up front.
    """
    r = http.post("/api/campaigns", json=_campaign_body(name, list_id, send_at))
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    return data["id"], data["relationships"]["campaign-messages"]["data"][0]["id"]


def _status(http: httpx.Client, campaign_id: str) -> str:
    """The campaign's status in the spec's (2026-07-15) shape; the SDK's revision
    keeps it on the message (see test_campaigns_sdk_revision)."""
    r = http.get(f"/api/campaigns/{campaign_id}")
    assert r.status_code == 200, r.text
    return str(r.json()["data"]["attributes"]["status"])


def _subscribed_list(klaviyo: KlaviyoAPI, http: httpx.Client) -> tuple[str, set[str]]:
    """A new list holding three subscribed profiles and one that never subscribed."""
    created = klaviyo.Lists.create_list({"data": {"type": "list", "attributes": {"name": "VIP"}}})
    list_id = created.data.id
    ids = []
    for k in range(4):
        attrs = {"email": f"sdk.campaign{k}@example.com", "first_name": f"P{k}"}
        body = {"data": {"type": "profile", "attributes": attrs}}
        r = http.post("/api/profile-import", json=body)
        assert r.status_code in (200, 201), r.text
        ids.append(r.json()["data"]["id"])
    # consent comes from the subscribe job (run by the clock advance below), as in Klaviyo
    if ids:
        subscribe = {
            "data": {
                "type": "profile-subscription-bulk-create-job",
                "attributes": {
                    "profiles": {
                        "data": [
                            {
                                "type": "profile",
                                "attributes": {
                                    "email": f"sdk.campaign{k}@example.com",
                                    "subscriptions": {
                                        "email": {"marketing": {"consent": "SUBSCRIBED"}}
                                    },
                                },
                            }
                            for k in range(3)
                        ]
                    }
                },
            }
        }
        r = http.post("/api/profile-subscription-bulk-create-jobs", json=subscribe)
        assert r.status_code == 202, r.text
    klaviyo.Lists.add_profiles_to_list(
        list_id, {"data": [{"type": "profile", "id": pid} for pid in ids]}
    )
    http.post("/_emulator/clock", json={"advance_seconds": 60})
    return list_id, set(ids[:3])


def test_template_campaign_schedule_cancel_revert_send_and_report(
    server: EmulatorServer, http: httpx.Client
) -> None:
    klaviyo = sdk(server)
    list_id, subscribed = _subscribed_list(klaviyo, http)

    template = klaviyo.Templates.create_template(
        {
            "data": {
                "type": "template",
                "attributes": {
                    "name": "Spring",
                    "editor_type": "CODE",
                    "html": "<p>Hi {{ first_name }}</p>",
                },
            }
        }
    )
    template_id = template.data.id
    rendered = klaviyo.Templates.render_template(
        {
            "data": {
                "type": "template",
                "id": template_id,
                "attributes": {"context": {"first_name": "Ada"}},
            }
        }
    )
    assert rendered.data.attributes.html == "<p>Hi Ada</p>"

    send_at = _now(http) + timedelta(hours=2)
    campaign_id, message_id = _create_campaign(http, "Spring drop", list_id, send_at)
    assert _status(http, campaign_id) == "Draft"
    klaviyo.Campaigns.assign_template_to_campaign_message(
        {
            "data": {
                "type": "campaign-message",
                "id": message_id,
                "relationships": {"template": {"data": {"type": "template", "id": template_id}}},
            }
        }
    )
    job_body = {"data": {"type": "campaign-send-job", "id": campaign_id}}

    def status() -> str:
        return _status(http, campaign_id)

    def act(action: str) -> None:
        klaviyo.Campaigns.cancel_campaign_send(
            campaign_id,
            {
                "data": {
                    "type": "campaign-send-job",
                    "id": campaign_id,
                    "attributes": {"action": action},
                }
            },
        )

    job = klaviyo.Campaigns.send_campaign(job_body)
    assert job.data.attributes.status == "queued"
    assert status() == "Scheduled"
    act("cancel")
    assert status() == "Cancelled"
    assert klaviyo.Campaigns.get_campaign_send_job(campaign_id).data.attributes.status == (
        "cancelled"
    )
    with pytest.raises(ApiException) as caught:
        act("revert")  # a cancelled send is over: nothing left to revert
    assert caught.value.status == 400

    # a second campaign goes through schedule → revert → schedule → sent
    campaign_id, message_id = _create_campaign(http, "Spring drop 2", list_id, send_at)
    klaviyo.Campaigns.assign_template_to_campaign_message(
        {
            "data": {
                "type": "campaign-message",
                "id": message_id,
                "relationships": {"template": {"data": {"type": "template", "id": template_id}}},
            }
        }
    )
    job_body = {"data": {"type": "campaign-send-job", "id": campaign_id}}
    klaviyo.Campaigns.send_campaign(job_body)
    assert status() == "Scheduled"
    act("revert")
    assert status() == "Draft"
    klaviyo.Campaigns.send_campaign(job_body)
    assert status() == "Scheduled"
    assert (
        http.get("/_emulator/outbox", params={"campaign_id": campaign_id}).json()["messages"] == []
    )

    http.post("/_emulator/clock", json={"advance_seconds": 5 * 86400})
    assert status() == "Sent"
    assert klaviyo.Campaigns.get_campaign_send_job(campaign_id).data.attributes.status == (
        "complete"
    )

    sent = http.get("/_emulator/outbox", params={"campaign_id": campaign_id}).json()["messages"]
    assert {m["profile_id"] for m in sent} == subscribed
    for m in sent:  # subject and template copy rendered for each recipient
        first_name = m["subject"].removeprefix("Hello ")
        assert first_name.startswith("P")
        assert m["html"] == f"<p>Hi {first_name}</p>"
        assert m["from_email"] == SENDER

    metrics = {m.attributes.name: m.id for m in klaviyo.Metrics.get_metrics().data}
    report = klaviyo.Reporting.query_campaign_values(
        {
            "data": {
                "type": "campaign-values-report",
                "attributes": {
                    "statistics": ["recipients", "delivered", "opens_unique", "clicks_unique"],
                    "timeframe": {"key": "last_30_days"},
                    "conversion_metric_id": metrics["Placed Order"],
                    "filter": f'equals(campaign_id,"{campaign_id}")',
                },
            }
        }
    )
    results = report.data.attributes.results
    assert len(results) == 1
    stats = results[0].statistics
    assert stats["recipients"] == stats["delivered"] == len(sent) == 3
    opened = _profiles_with(http, metrics["Opened Email"], message_id)
    clicked = _profiles_with(http, metrics["Clicked Email"], message_id)
    assert stats["opens_unique"] == len(opened)
    assert stats["clicks_unique"] == len(clicked)
    assert opened <= subscribed


def _profiles_with(http: httpx.Client, metric_id: str, message_id: str) -> set[str]:
    """Profiles with an event of ``metric_id`` for ``message_id``, read from GET /api/events."""
    found: set[str] = set()
    url: str | None = "/api/events"
    params: dict[str, str] | None = {"filter": f'equals(metric_id,"{metric_id}")'}
    while url:
        body = http.get(url, params=params).json()
        for event in body["data"]:
            if event["attributes"]["event_properties"].get("$message") == message_id:
                found.add(event["relationships"]["profile"]["data"]["id"])
        url, params = body["links"].get("next"), None
    return found


def test_templates_and_flow_reports_through_the_sdk_models(
    server: EmulatorServer, http: httpx.Client
) -> None:
    klaviyo = sdk(server)
    attrs = {"name": "SDK", "editor_type": "CODE", "html": "<b>{{ x }}</b>", "text": "{{ x }}"}
    created = klaviyo.Templates.create_template({"data": {"type": "template", "attributes": attrs}})
    tid = created.data.id
    klaviyo.Templates.update_template(
        tid, {"data": {"type": "template", "id": tid, "attributes": {"name": "SDK 2"}}}
    )
    assert klaviyo.Templates.get_template(tid).data.attributes.name == "SDK 2"
    listed = klaviyo.Templates.get_templates()
    assert len(listed.data) <= 10
    clone = klaviyo.Templates.clone_template(
        {"data": {"type": "template", "id": tid, "attributes": {"name": "SDK clone"}}}
    )
    assert clone.data.attributes.html == "<b>{{ x }}</b>"
    klaviyo.Templates.delete_template(clone.data.id)
    with pytest.raises(ApiException) as caught:
        klaviyo.Templates.get_template(clone.data.id)
    assert caught.value.status == 404

    metrics = {m.attributes.name: m.id for m in klaviyo.Metrics.get_metrics().data}
    report = klaviyo.Reporting.query_flow_values(
        {
            "data": {
                "type": "flow-values-report",
                "attributes": {
                    "statistics": ["recipients", "open_rate"],
                    "timeframe": {"key": "last_12_months"},
                    "conversion_metric_id": metrics["Placed Order"],
                },
            }
        }
    )
    assert isinstance(report.data.attributes.results, list)
