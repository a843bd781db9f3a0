"""The stock official SDK — no header override, so ``revision: 2026-10-15`` — through
every campaign operation the emulator serves, parsing each answer into its models.

The SDK 25.0.0's campaign models are the 2026-10-15 "omnicampaign" shapes
(``definition``, ``created``/``updated`` on messages); the spec's 2026-07-15
shapes stay what a 2026-07-15 caller gets, and a revision the emulator does
not implement is Klaviyo's 400.
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
    config = EmulatorConfig(seed=22, profiles=60, events=200, rate_limit_factor=None)
    with EmulatorServer(config) as running:
        yield running


@pytest.fixture(scope="module")
def http(server: EmulatorServer) -> Iterator[httpx.Client]:
    with http_client_for(server) as client:
        yield client


def stock_sdk(server: EmulatorServer) -> KlaviyoAPI:
    return KlaviyoAPI(server.api_key, max_delay=1, max_retries=0, test_host=server.base_url)


def _now(http: httpx.Client) -> datetime:
    return datetime.fromisoformat(http.get("/_emulator/clock").json()["now"])


def _omnicampaign(name: str, list_id: str) -> dict[str, Any]:
    return {
        "data": {
            "type": "campaign",
            "attributes": {
                "definition": {"name": name, "send_settings": {"send_strategy": "static"}},
                "audiences": [{"temporary_id": "a1", "name": "VIP", "included": [list_id]}],
                "messages": [
                    {
                        "audience_temporary_id": "a1",
                        "name": "Main",
                        "variations": [
                            {
                                "definition": {
                                    "name": "A",
                                    "details": {
                                        "channel": "email",
                                        "content": {
                                            "subject": "Hello {{ first_name }}",
                                            "from_email": SENDER,
                                            "from_label": "Northwind",
                                        },
                                    },
                                }
                            }
                        ],
                    }
                ],
            },
        }
    }


def test_the_sdk_revision_is_served_its_own_shapes(
    server: EmulatorServer, http: httpx.Client
) -> None:
    k = stock_sdk(server)
    list_id = k.Lists.create_list({"data": {"type": "list", "attributes": {"name": "VIP"}}}).data.id
    profile = k.Profiles.create_profile(
        {"data": {"type": "profile", "attributes": {"email": "omni@example.com"}}}
    ).data.id
    k.Lists.add_profiles_to_list(list_id, {"data": [{"type": "profile", "id": profile}]})

    created = k.Campaigns.create_campaign(_omnicampaign("Omni", list_id))
    cid = created.data.id
    assert created.data.attributes.definition.name == "Omni"
    assert created.data.attributes.created_at is not None
    mid = created.data.relationships.campaign_messages.data[0].id

    listed = k.Campaigns.get_campaigns(filter='contains(name,"Omni")')
    assert [c.id for c in listed.data] == [cid]
    one = k.Campaigns.get_campaign(cid, include=["campaign-messages", "tags"])
    assert one.data.attributes.definition.archived is False
    assert one.included
    assert one.included[0]["attributes"]["definition"]["name"] == "Main"

    # sparse fieldsets name the revision's attributes (the SDK answers a dict then)
    sparse = k.Campaigns.get_campaign(cid, fields_campaign=["definition.name"])
    assert sparse["data"]["attributes"] == {"definition": {"name": "Omni"}}

    updated = k.Campaigns.update_campaign(
        cid,
        {
            "data": {
                "type": "campaign",
                "id": cid,
                "attributes": {"definition": {"name": "Omni 2"}},
            }
        },
    )
    assert updated.data.attributes.definition.name == "Omni 2"

    message = k.Campaigns.get_campaign_message(mid)
    assert message.data.attributes.definition.name == "Main"
    assert message.data.attributes.definition.status == "draft"
    assert message.data.attributes.created is not None
    send_at = (_now(http) + timedelta(hours=2)).replace(microsecond=0)
    patched = k.Campaigns.update_campaign_message(
        mid,
        {
            "data": {
                "type": "campaign-message",
                "id": mid,
                "attributes": {
                    "definition": {
                        "name": "Main v2",
                        "send_options": {
                            "send_strategy": "static",
                            "send_time": send_at.isoformat(),
                        },
                        "tracking_options": {"is_add_utm": True},
                    }
                },
            }
        },
    )
    assert patched.data.attributes.definition.name == "Main v2"
    assert patched.data.attributes.definition.send_options.send_time == send_at
    assert patched.data.attributes.definition.tracking_options.is_add_utm is True

    assert [m.id for m in k.Campaigns.get_messages_for_campaign(cid).data] == [mid]
    assert [m.id for m in k.Campaigns.get_message_ids_for_campaign(cid).data] == [mid]
    assert k.Campaigns.get_campaign_for_campaign_message(mid).data.id == cid
    assert k.Campaigns.get_campaign_id_for_campaign_message(mid).data.id == cid
    assert k.Campaigns.get_tags_for_campaign(cid).data == []
    assert k.Campaigns.get_tag_ids_for_campaign(cid).data == []

    template = k.Templates.create_template(
        {
            "data": {
                "type": "template",
                "attributes": {"name": "T", "editor_type": "CODE", "html": "<p>Hi</p>"},
            }
        }
    ).data.id
    assigned = k.Campaigns.assign_template_to_campaign_message(
        {
            "data": {
                "type": "campaign-message",
                "id": mid,
                "relationships": {"template": {"data": {"type": "template", "id": template}}},
            }
        }
    )
    assert assigned.data.attributes.channel == "email"
    copy = k.Campaigns.get_template_id_for_campaign_message(mid).data.id
    assert k.Campaigns.get_template_for_campaign_message(mid).data.id == copy

    image = k.Images.get_images().data[0].id
    k.Campaigns.update_image_for_campaign_message(mid, {"data": {"type": "image", "id": image}})
    assert k.Campaigns.get_image_id_for_campaign_message(mid).data.id == image
    assert k.Campaigns.get_image_for_campaign_message(mid).data.id == image
    with pytest.raises(ApiException) as no_such:
        k.Campaigns.update_image_for_campaign_message(
            mid, {"data": {"type": "image", "id": "nope"}}
        )
    assert no_such.value.status == 400

    job = k.Campaigns.refresh_campaign_recipient_estimation(
        {"data": {"type": "campaign-recipient-estimation-job", "id": cid}}
    )
    assert k.Campaigns.get_campaign_recipient_estimation_job(job.data.id).data.id == cid
    http.post("/_emulator/clock", json={"advance_seconds": 60})
    estimate = k.Campaigns.get_campaign_recipient_estimation(cid)
    assert estimate.data.attributes.estimated_recipient_count >= 0

    clone = k.Campaigns.clone_campaign(
        {"data": {"type": "campaign", "id": cid, "attributes": {"name": "Omni copy"}}}
    )
    assert clone.data.attributes.definition.name == "Omni copy"

    sent = k.Campaigns.send_campaign({"data": {"type": "campaign-send-job", "id": cid}})
    assert sent.data.attributes.status == "queued"
    assert k.Campaigns.get_campaign_message(mid).data.attributes.definition.status == "scheduled"
    assert k.Campaigns.get_campaign_send_job(cid).data.attributes.status == "queued"
    k.Campaigns.cancel_campaign_send(
        cid,
        {"data": {"type": "campaign-send-job", "id": cid, "attributes": {"action": "revert"}}},
    )
    assert k.Campaigns.get_campaign_message(mid).data.attributes.definition.status == "draft"

    k.Campaigns.delete_campaign(clone.data.id)
    with pytest.raises(ApiException) as caught:
        k.Campaigns.get_campaign(clone.data.id)
    assert caught.value.status == 404


def test_the_spec_revision_keeps_its_shapes_and_unknown_revisions_are_refused(
    http: httpx.Client,
) -> None:
    lid = http.post("/api/lists", json={"data": {"type": "list", "attributes": {"name": "L"}}})
    body = {
        "data": {
            "type": "campaign",
            "attributes": {
                "name": "Spec shape",
                "audiences": {"included": [lid.json()["data"]["id"]], "excluded": []},
                "send_strategy": {"method": "immediate"},
                "campaign-messages": {
                    "data": [
                        {
                            "type": "campaign-message",
                            "attributes": {
                                "definition": {
                                    "channel": "email",
                                    "label": "Main",
                                    "content": {"subject": "s", "from_email": SENDER},
                                }
                            },
                        }
                    ]
                },
            },
        }
    }
    created = http.post("/api/campaigns", json=body)
    assert created.status_code == 201, created.text
    cid = created.json()["data"]["id"]
    spec = http.get(f"/api/campaigns/{cid}", headers={"revision": "2026-07-15"}).json()["data"]
    assert spec["attributes"]["name"] == "Spec shape"
    assert spec["attributes"]["status"] == "Draft"
    assert "definition" not in spec["attributes"]
    omni = http.get(f"/api/campaigns/{cid}", headers={"revision": "2026-10-15"}).json()["data"]
    assert omni["attributes"]["definition"]["name"] == "Spec shape"
    assert "name" not in omni["attributes"]

    refused = http.get(f"/api/campaigns/{cid}", headers={"revision": "2025-04-15"})
    assert refused.status_code == 400
    error = refused.json()["errors"][0]
    assert error["code"] == "invalid"
    assert error["source"] == {"parameter": "revision"}
    assert "2025-04-15" in error["detail"]
