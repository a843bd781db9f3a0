"""Campaign jobs checked when made (422 naming params.<key>), run by the worker through
publish → revert → schedule, and the account's campaigns listed through the connection."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from kbridge.api import AsyncClient
from kbridge.emulator.server import EmulatorServer
from kbridge.service.jobs import WorkerSettings
from kbridge.service.worker import InProcessService, start_in_process
from kbridge.testing.plugin import http_client_for
from tests.integration.service.jobhelp import wait_for
from tests.integration.web.conftest import Api

pytestmark = pytest.mark.integration

SENDER = "store@northwind.example"
PUBLISH: dict[str, Any] = {
    "name": "Winter sale",
    "included": ["LIST1"],
    "subject": "The winter sale is on",
    "html": "<html><body><p>Our sale starts now.</p></body></html>",
}


@pytest.fixture
def connection(api: Api) -> dict[str, Any]:
    return api.connect(api.a)


def _job(api: Api, kind: str, params: dict[str, Any]) -> Any:
    return api.a.post("/api/v1/jobs", json={"kind": kind, "connection": "shop", "params": params})


@pytest.mark.parametrize(
    ("kind", "params", "field"),
    [
        ("campaign_publish", {**PUBLISH, "name": None}, "params.name"),
        (
            "campaign_publish",
            {k: v for k, v in PUBLISH.items() if k != "subject"},
            "params.subject",
        ),
        ("campaign_publish", {**PUBLISH, "included": []}, "params.included"),
        ("campaign_publish", {**PUBLISH, "included": "LIST1"}, "params.included"),
        ("campaign_publish", {**PUBLISH, "template_id": "T1"}, "params.template_id"),
        (
            "campaign_publish",
            {k: v for k, v in PUBLISH.items() if k != "html"},
            "params.template_id",
        ),
        ("campaign_publish", {**PUBLISH, "from_email": "nope"}, "params.from_email"),
        ("campaign_publish", {**PUBLISH, "smart_sending": "no"}, "params.smart_sending"),
        ("campaign_publish", {**PUBLISH, "utm": {"utm_source": 1}}, "params.utm"),
        ("campaign_publish", {**PUBLISH, "send_at": "tomorrow"}, "params.send_at"),
        ("campaign_publish", {**PUBLISH, "send_at": "2030-01-01T09:00:00"}, "params.send_at"),
        ("campaign_publish", {**PUBLISH, "send_at": "2026-02-01T09:00:00Z"}, "params.send_at"),
        ("campaign_publish", {**PUBLISH, "colour": "red"}, "params.colour"),
        ("campaign_schedule", {}, "params.campaign_id"),
        ("campaign_schedule", {"campaign_id": "C1", "send_at": 5}, "params.send_at"),
        ("campaign_schedule", {"campaign_id": "C1", "name": "x"}, "params.name"),
        ("campaign_cancel", {"campaign_id": ""}, "params.campaign_id"),
        (
            "campaign_cancel",
            {"campaign_id": "C1", "send_at": "2030-01-01T09:00:00Z"},
            "params.send_at",
        ),
        ("campaign_revert", {}, "params.campaign_id"),
    ],
)
def test_bad_campaign_params_are_422_naming_the_param_and_nothing_is_queued(
    api: Api, connection: dict[str, Any], kind: str, params: dict[str, Any], field: str
) -> None:
    reply = _job(api, kind, params)

    assert reply.status_code == 422, reply.text
    assert reply.json()["error"]["field"] == field
    assert reply.json()["error"]["message"].startswith(f"{field}:")
    assert api.a.get("/api/v1/jobs").json() == []


def test_good_campaign_params_are_queued_with_send_at_normalised(
    api: Api, connection: dict[str, Any]
) -> None:
    published = _job(api, "campaign_publish", {**PUBLISH, "send_at": "2030-01-01T09:00:00Z"})
    scheduled = _job(api, "campaign_schedule", {"campaign_id": "C1"})
    cancelled = _job(api, "campaign_cancel", {"campaign_id": "C1"})

    assert [r.status_code for r in (published, scheduled, cancelled)] == [202, 202, 202]
    job = api.a.get(f"/api/v1/jobs/{published.json()['id']}").json()
    assert job["params"]["send_at"] == "2030-01-01T09:00:00+00:00"
    assert job["params"]["included"] == ["LIST1"]


# -- through the worker, and listed ---------------------------------------------------------------


@pytest.fixture
def server(emulator_factory: Callable[..., EmulatorServer]) -> EmulatorServer:
    server = emulator_factory()  # its own account: campaigns are made here
    with http_client_for(server) as http:
        http.post("/_emulator/senders", json={"email": SENDER}).raise_for_status()
    return server


@pytest.fixture
def worker(api: Api) -> Iterator[InProcessService]:
    settings = WorkerSettings(
        data_dir=api.data_dir,
        master_key=api.app.state.kbridge.master_key,
        lease=timedelta(seconds=6),
        retry_backoff=timedelta(milliseconds=100),
    )
    handle = start_in_process(api.appdb, settings, tick_every=timedelta(milliseconds=200))
    try:
        yield handle
    finally:
        handle.stop()


def _audience(server: EmulatorServer) -> str:
    async def make() -> str:
        async with AsyncClient(server.api_key, base_url=server.base_url) as client:
            chosen = []
            async for p in client.profiles.iter_profiles(
                additional_fields={"profile": ["subscriptions"]}
            ):
                email = (p.attributes.get("subscriptions") or {}).get("email") or {}
                if (email.get("marketing") or {}).get("can_receive_email_marketing") and p.id:
                    chosen.append(p.id)
                if len(chosen) == 5:
                    break
            made = await client.lists.create_list(name="Service audience")
            assert made.id is not None
            await client.lists.add_profiles_to_list(made.id, profile_ids=chosen)
            return made.id

    return asyncio.run(make())


def _run(api: Api, worker: InProcessService, kind: str, params: dict[str, Any]) -> Any:
    reply = api.a.post(
        "/api/v1/jobs", json={"kind": kind, "connection": "northwind", "params": params}
    )
    assert reply.status_code == 202, reply.text
    worker.queue(reply.json()["id"])
    done = wait_for(api.appdb, reply.json()["id"])
    assert done.state == "succeeded", done.last_error
    return done.result


def test_publish_revert_schedule_through_the_worker_then_list_the_campaigns(
    api: Api, worker: InProcessService, server: EmulatorServer
) -> None:
    made = api.a.post(
        "/api/v1/connections",
        json={"name": "northwind", "api_key": server.api_key, "base_url": server.base_url},
    )
    assert made.status_code == 201, made.text
    params = {
        **PUBLISH,
        "included": [_audience(server)],
        "from_email": SENDER,
        "send_at": "2030-01-01T09:00:00Z",
    }

    published = _run(api, worker, "campaign_publish", params)
    assert published["status"] == "Scheduled"
    campaign_id = published["id"]
    reverted = _run(api, worker, "campaign_revert", {"campaign_id": campaign_id})
    assert reverted["status"] == "Draft"
    rescheduled = _run(
        api,
        worker,
        "campaign_schedule",
        {"campaign_id": campaign_id, "send_at": "2030-02-01T09:00:00Z"},
    )
    assert rescheduled["status"] == "Scheduled"
    assert rescheduled["send_time"].startswith("2030-02-01T09:00:00")

    listed = api.a.get("/api/v1/campaigns", params={"connection": made.json()["id"]})
    assert listed.status_code == 200, listed.text
    with http_client_for(server) as http:
        truth = http.get("/api/campaigns", params={"filter": "equals(messages.channel,'email')"})
    assert {c["id"] for c in listed.json()} == {c["id"] for c in truth.json()["data"]}
    ours = next(c for c in listed.json() if c["id"] == campaign_id)
    assert (ours["name"], ours["status"], ours["channel"]) == ("Winter sale", "Scheduled", "email")
    by_name = api.a.get("/api/v1/campaigns", params={"connection": "northwind", "limit": 1})
    assert len(by_name.json()) == 1


def test_campaigns_are_404_for_another_workspaces_connection_and_422_on_bad_input(
    api: Api, connection: dict[str, Any]
) -> None:
    assert (
        api.b.get("/api/v1/campaigns", params={"connection": connection["id"]}).status_code == 404
    )
    assert api.b.get("/api/v1/campaigns", params={"connection": "shop"}).status_code == 404
    for params, field in (
        ({}, "connection"),
        ({"connection": "shop", "channel": "fax"}, "channel"),
        ({"connection": "shop", "limit": 0}, "limit"),
        ({"connection": "shop", "limit": "many"}, "limit"),
    ):
        reply = api.a.get("/api/v1/campaigns", params=params)
        assert reply.status_code == 422, reply.text
        assert reply.json()["error"]["field"] == field
