"""Events, campaigns (+ messages, send jobs), templates, images, flows, tags, reporting,
data privacy — each action against the emulator over loopback."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from kbridge.api import AsyncClient, Client, NotFoundError
from kbridge.api.filter_builder import F
from kbridge.api.resources import NewEvent, email_message, timeframe
from kbridge.api.validation import ValidationError
from kbridge.emulator import EmulatorServer

pytestmark = pytest.mark.integration

# 1x1 transparent PNG
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def _metric_id(client: Client, name: str) -> str:
    for metric in client.metrics.iter_metrics():
        if metric["name"] == name:
            return metric.id or ""
    raise AssertionError(f"no metric {name}")


def test_create_event_then_find_it(client: Client) -> None:
    when = datetime(2026, 7, 1, 12, tzinfo=UTC)
    client.events.create_event(
        NewEvent(
            metric="Integration Order",
            profile={"email": "buyer@example.com", "first_name": "Bea"},
            properties={"OrderId": "1"},
            time=when,
            value=9.99,
            value_currency="USD",
            unique_id="order-1",
        )
    )
    metric_id = _metric_id(client, "Integration Order")
    events = list(client.events.iter_events(filter=F.equals("metric_id", metric_id)))
    assert len(events) == 1
    assert events[0]["event_properties"]["OrderId"] == "1"
    one = client.events.get_event(events[0].id or "", include=["profile"])
    assert one.related_one("profile") is not None


def test_bulk_create_events_splits_into_jobs_of_1000(client: Client) -> None:
    events = [
        NewEvent(
            metric="Bulk Ping", profile={"email": f"ping{i % 7}@example.com"}, unique_id=f"p{i}"
        )
        for i in range(2100)
    ]
    done: list[int] = []
    assert client.events.bulk_create_events(events, progress=done.append) == 2100
    assert sorted(done) == [100, 1000, 1000]
    metric_id = _metric_id(client, "Bulk Ping")
    seen = sum(1 for _ in client.events.iter_events(filter=F.equals("metric_id", metric_id)))
    assert seen == 2100


def test_bulk_import_profiles(client: Client) -> None:
    jobs = client.bulk.bulk_import_profiles(
        [{"email": f"imp{i}@example.com", "first_name": "Imp"} for i in range(3)]
    )
    assert len(jobs) == 1
    assert jobs[0].type == "profile-bulk-import-job"


def test_template_lifecycle_render_and_clone(client: Client) -> None:
    made = client.templates.create_template(
        name="Welcome", html="<p>Hi {{ first_name }}</p>", text="Hi {{ first_name }}"
    )
    assert made["editor_type"] == "CODE"
    assert client.templates.get_template(made.id or "")["name"] == "Welcome"
    listed = [t.id for t in client.templates.iter_templates(filter=F.equals("name", "Welcome"))]
    assert made.id in listed
    assert client.templates.update_template(made.id or "", name="Welcome 2")["name"] == "Welcome 2"
    rendered = client.templates.render_template(made.id or "", context={"first_name": "Ada"})
    assert "Hi Ada" in rendered["html"]
    clone = client.templates.clone_template(made.id or "", name="Welcome copy")
    assert clone.id != made.id
    assert clone["name"] == "Welcome copy"
    for tid in (made.id, clone.id):
        client.templates.delete_template(tid or "")
    with pytest.raises(NotFoundError):
        client.templates.get_template(made.id or "")


def test_campaign_lifecycle_send_and_cancel(client: Client) -> None:
    audience = client.lists.create_list(name="Campaign audience")
    send_at = datetime(2030, 1, 1, 15, tzinfo=UTC)
    campaign = client.campaigns.create_campaign(
        name="Summer",
        included=[audience.id or ""],
        message=email_message(subject="Hi", from_email="shop@example.com", from_label="Shop"),
        send_at=send_at,
    )
    cid = campaign.id or ""
    assert campaign["status"] == "Draft"
    assert client.campaigns.get_campaign(cid)["name"] == "Summer"
    names = [c["name"] for c in client.campaigns.iter_campaigns(channel="email")]
    assert "Summer" in names
    with pytest.raises(ValidationError):
        client.campaigns.get_campaigns()  # Klaviyo requires the channel
    assert client.campaigns.update_campaign(cid, name="Summer sale")["name"] == "Summer sale"
    messages = client.campaigns.get_messages_for_campaign(cid)
    assert len(messages) == 1
    mid = messages[0].id or ""
    changed = email_message(subject="Hello again", from_email="shop@example.com", label="B")
    client.campaigns.update_campaign_message(mid, definition=changed)
    content = client.campaigns.get_campaign_message(mid)["definition"]["content"]
    assert content["subject"] == "Hello again"
    template = client.templates.create_template(name="For campaign", html="<p>x</p>")
    client.campaigns.assign_template_to_campaign_message(
        messages[0].id or "", template_id=template.id or ""
    )
    client.campaigns.send_campaign(cid)
    job = client.campaigns.get_campaign_send_job(cid)
    assert job.id == cid
    client.campaigns.cancel_campaign_send(cid, action="revert")
    assert client.campaigns.get_campaign(cid)["status"] == "Draft"
    client.campaigns.delete_campaign(cid)
    with pytest.raises(NotFoundError):
        client.campaigns.get_campaign(cid)


def _operation_count(server: EmulatorServer, operation_id: str) -> int:
    with httpx.Client(base_url=server.base_url) as http:
        ops = http.get("/_emulator/stats").json()["operations"]
    return int(ops.get(operation_id, {}).get("requests", 0))


def test_images_from_url_data_uri_and_file(
    client: Client, server: EmulatorServer, tmp_path: Path
) -> None:
    path = tmp_path / "dot.png"
    path.write_bytes(PNG)
    before = _operation_count(server, "upload_image_from_file")
    uploaded = client.images.upload_image_from_file(path)
    assert uploaded["name"] == "dot"
    # the method is named after the multipart operation, and calls it
    assert _operation_count(server, "upload_image_from_file") == before + 1
    assert client.images.get_image(uploaded.id or "")["size"] == len(PNG)
    assert client.images.get_image(uploaded.id or "").id == uploaded.id
    renamed = client.images.update_image(uploaded.id or "", name="pixel", hidden=True)
    assert renamed["name"] == "pixel"
    assert renamed["hidden"] is True
    listed = [i.id for i in client.images.iter_images(filter=F.equals("name", "pixel"))]
    assert listed == [uploaded.id]
    from_url = client.images.upload_image_from_url(url="https://example.com/logo.png", name="logo")
    assert from_url["name"] == "logo"


def test_flow_lifecycle(client: Client) -> None:
    target = client.lists.create_list(name="Flow trigger")
    definition = {
        "triggers": [{"type": "list", "id": target.id}],
        "actions": [
            {
                "temporary_id": "a1",
                "type": "time-delay",
                "data": {
                    "unit": "days",
                    "value": 1,
                    "secondary_value": 0,
                    "timezone": "profile",
                    "delay_until_weekdays": [],
                },
            }
        ],
        "entry_action_id": "a1",
    }
    flow = client.flows.create_flow(name="Welcome flow", definition=definition)
    fid = flow.id or ""
    assert client.flows.get_flow(fid)["name"] == "Welcome flow"
    listed = [f.id for f in client.flows.iter_flows(filter=F.equals("name", "Welcome flow"))]
    assert listed == [fid]
    assert client.flows.update_flow(fid, status="manual")["status"] == "manual"
    client.flows.delete_flow(fid)
    with pytest.raises(NotFoundError):
        client.flows.get_flow(fid)


def test_tag_lifecycle(client: Client) -> None:
    tag = client.tags.create_tag(name="promo")
    tid = tag.id or ""
    assert client.tags.get_tag(tid)["name"] == "promo"
    assert tid in [t.id for t in client.tags.iter_tags(filter=F.equals("name", "promo"))]
    client.tags.update_tag(tid, name="promo-2026")
    assert client.tags.get_tag(tid)["name"] == "promo-2026"
    target = client.lists.create_list(name="Tagged")
    client.tags.tag_resources(tid, kind="lists", ids=[target.id or ""])
    client.tags.untag_resources(tid, kind="lists", ids=[target.id or ""])
    client.tags.delete_tag(tid)
    with pytest.raises(NotFoundError):
        client.tags.get_tag(tid)


def test_values_reports(client: Client) -> None:
    metric_id = _metric_id(client, "Placed Order")
    frame = timeframe("last_30_days")
    report = client.reporting.query_campaign_values(
        statistics=["opens", "clicks"], conversion_metric_id=metric_id, timeframe=frame
    )
    assert "results" in report.attributes
    flows = client.reporting.query_flow_values(
        statistics=["opens"], conversion_metric_id=metric_id, timeframe=frame
    )
    assert "results" in flows.attributes


def test_request_profile_deletion(client: Client, server: EmulatorServer) -> None:
    made = client.profiles.create_profile(email="forget-me@example.com")
    client.data_privacy.request_profile_deletion(email="forget-me@example.com")
    # Deletion is asynchronous: it happens once the simulated clock reaches the job's due time.
    assert client.profiles.get_profile(made.id or "").id == made.id
    advanced = httpx.post(
        f"{server.base_url}/_emulator/clock", json={"advance_seconds": 3 * 86400}, timeout=10
    )
    assert advanced.status_code == 200
    remaining = client.profiles.get_profiles(filter=F.equals("email", "forget-me@example.com"))
    assert remaining == []
    with pytest.raises(NotFoundError):
        client.profiles.get_profile(made.id or "")


@pytest.mark.anyio
async def test_async_client_services(server: EmulatorServer) -> None:
    async with AsyncClient(server.api_key, base_url=server.base_url) as client:
        accounts = await client.accounts.get_accounts()
        assert accounts[0].type == "account"
        count = 0
        async for _ in client.profiles.iter_profiles(page_size=20):
            count += 1
        assert count >= 60
        since = datetime(2000, 1, 1, tzinfo=UTC)
        recent = await client.profiles.get_profiles(filter=F.greater_than("updated", since))
        assert recent
