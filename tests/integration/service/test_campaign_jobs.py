"""Campaign jobs on the in-process worker: a publish sends once; an unverified sender stops it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from kbridge.api import AsyncClient
from kbridge.connections import generate_master_key
from kbridge.emulator.server import EmulatorServer
from kbridge.service.appdb import AppDatabase
from kbridge.service.db import database_url
from kbridge.service.jobs import WorkerSettings
from kbridge.service.worker import InProcessService, start_in_process
from kbridge.testing.plugin import http_client_for

from .jobhelp import connect, wait_for

pytestmark = pytest.mark.integration

KEY = generate_master_key()
SENDER = "store@northwind.example"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[AppDatabase]:
    appdb = AppDatabase.open(database_url(tmp_path))
    try:
        yield appdb
    finally:
        appdb.close()


@pytest.fixture
def service(db: AppDatabase, tmp_path: Path) -> Iterator[InProcessService]:
    settings = WorkerSettings(
        data_dir=tmp_path,
        master_key=KEY,
        lease=timedelta(seconds=6),
        retry_backoff=timedelta(milliseconds=100),
    )
    handle = start_in_process(db, settings, tick_every=timedelta(milliseconds=200))
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def server(emulator_factory: Callable[..., EmulatorServer]) -> EmulatorServer:
    return emulator_factory()


def _audience(server: EmulatorServer) -> str:
    """A new list of profiles that can receive email marketing."""

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


def _params(list_id: str, sender: str) -> dict[str, object]:
    return {
        "name": "Winter sale",
        "included": [list_id],
        "subject": "The winter sale is on",
        "from_email": sender,
        "from_label": "Northwind",
        "html": "<html><body><p>Our sale starts now.</p></body></html>",
        "smart_sending": False,
    }


def test_a_publish_job_sends_the_campaign_once(
    db: AppDatabase, service: InProcessService, server: EmulatorServer
) -> None:
    with http_client_for(server) as http:
        http.post("/_emulator/senders", json={"email": SENDER}).raise_for_status()
    workspace = db.create_workspace("acme")
    connection = connect(db, workspace.id, server, KEY)
    job = db.enqueue_job(
        workspace.id,
        "campaign_publish",
        _params(_audience(server), SENDER),
        connection_id=connection,
    )
    service.queue(job.id)

    done = wait_for(db, job.id)

    assert done.state == "succeeded", done.last_error
    assert done.result is not None
    campaign_id = done.result["id"]
    assert not done.result["status"].startswith("Cancelled")
    with http_client_for(server) as http:
        campaigns = http.get(
            "/api/campaigns", params={"filter": "equals(messages.channel,'email')"}
        )
        names = [c["attributes"]["name"] for c in campaigns.json()["data"]]
    assert names.count("Winter sale") == 1
    assert campaign_id in {c["id"] for c in campaigns.json()["data"]}


def test_an_unverified_sender_fails_once_saying_what_to_verify(
    db: AppDatabase, service: InProcessService, server: EmulatorServer
) -> None:
    workspace = db.create_workspace("acme")
    connection = connect(db, workspace.id, server, KEY)
    job = db.enqueue_job(
        workspace.id,
        "campaign_publish",
        _params(_audience(server), "nobody@unverified.example"),
        connection_id=connection,
    )
    service.queue(job.id)

    done = wait_for(db, job.id)

    assert done.state == "failed"
    assert done.attempts == 1
    assert done.last_error is not None
    assert "\n" not in done.last_error
    assert "nobody@unverified.example" in done.last_error
    assert "verify" in done.last_error
    assert [e.event for e in db.job_events(workspace.id, job.id)] == ["queued", "claimed", "failed"]
