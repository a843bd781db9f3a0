"""Privacy requests through the API: received, queued as a job, due by the legal clock, and
followed through the in-process worker against the emulator to "confirmed"."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kbridge.core import SystemClock
from kbridge.emulator.server import EmulatorServer
from kbridge.privacy import Subject, subject_hash
from kbridge.service.jobs import AppPrivacyLog, WorkerSettings
from kbridge.service.worker import InProcessService, start_in_process
from kbridge.testing.plugin import http_client_for
from tests.integration.service.jobhelp import emulator_ids, wait_for
from tests.integration.web.conftest import Api

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


@pytest.fixture
def worker(api: Api) -> Iterator[InProcessService]:
    settings = WorkerSettings(
        data_dir=api.data_dir,
        master_key=api.app.state.kbridge.master_key,
        lease=timedelta(seconds=6),
        retry_backoff=timedelta(milliseconds=100),
        busy_retry=timedelta(milliseconds=100),
        confirm_within=timedelta(seconds=2),
    )
    handle = start_in_process(
        api.appdb, settings, threads=1, tick_every=timedelta(milliseconds=200)
    )
    try:
        yield handle
    finally:
        handle.stop()


def _first_profile(server: EmulatorServer) -> tuple[str, str]:
    with http_client_for(server) as http:
        first = http.get("/api/profiles").json()["data"][0]
    return first["id"], first["attributes"]["email"]


def _privacy_key(api: Api, workspace_id: str) -> bytes:
    log = AppPrivacyLog(
        api.appdb,
        workspace_id,
        "",
        master_key=api.app.state.kbridge.master_key,
        clock=SystemClock(),
    )
    return log.audit_key()


def test_a_request_is_received_with_its_queued_job_and_due_in_30_days_under_gdpr(
    api: Api,
) -> None:
    shop = api.connect(api.a)
    reply = api.a.post(
        "/api/v1/privacy-requests",
        json={"kind": "deletion", "connection": shop["id"], "email": "Ada@Example.com"},
    )

    assert reply.status_code == 202, reply.text
    made = reply.json()
    assert reply.headers["Location"] == f"/api/v1/privacy-requests/{made['id']}"
    assert made["kind"] == "deletion"
    assert made["connection"] == shop["id"]
    assert made["regulation"] == "gdpr"
    assert made["state"] == "received"
    assert made["subject_type"] == "email"
    assert made["received_at"] == _iso(NOW)
    assert made["due_at"] == _iso(NOW + timedelta(days=30))
    # the subject is kept as the privacy audit log's keyed hash, never in clear
    key = _privacy_key(api, api.workspace_a)
    assert made["subject_hash"] == subject_hash(key, Subject(email="Ada@Example.com"))
    assert "ada@example.com" not in reply.text.lower()
    # its job is queued and the broker was told
    assert made["job"]["state"] == "queued"
    job = api.a.get(f"/api/v1/jobs/{made['job']['id']}").json()
    assert job["kind"] == "privacy_delete"
    assert job["connection"] == shop["id"]
    # the job carries the subject sealed; the API shows how many, never who
    assert job["params"] == {"subject_count": 1, "privacy_request": made["id"]}
    stored = b"".join(p.read_bytes() for p in api.data_dir.glob("app.sqlite3*"))
    assert b"ada@example.com" not in stored.lower()
    assert api.enqueued == [made["job"]["id"]]

    assert api.a.get(f"/api/v1/privacy-requests/{made['id']}").json() == made
    assert [r["id"] for r in api.a.get("/api/v1/privacy-requests").json()] == [made["id"]]


def test_ccpa_gives_45_days_and_a_phone_subject_is_hashed_as_a_phone(api: Api) -> None:
    api.connect(api.a)
    reply = api.a.post(
        "/api/v1/privacy-requests",
        json={
            "kind": "access",
            "connection": "shop",
            "phone": "+15005550006",
            "regulation": "ccpa",
        },
    )

    assert reply.status_code == 202, reply.text
    made = reply.json()
    assert made["due_at"] == _iso(NOW + timedelta(days=45))
    assert made["subject_type"] == "phone"
    key = _privacy_key(api, api.workspace_a)
    assert made["subject_hash"] == subject_hash(key, Subject(phone_number="+15005550006"))
    assert "5550006" not in reply.text
    assert api.a.get(f"/api/v1/jobs/{made['job']['id']}").json()["kind"] == "privacy_access"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "erasure", "connection": "shop", "email": "a@b.co"}, "kind"),
        ({"kind": "access", "email": "a@b.co"}, "connection"),
        ({"kind": "access", "connection": "nope", "email": "a@b.co"}, "connection"),
        ({"kind": "access", "connection": "shop"}, "email"),
        ({"kind": "access", "connection": "shop", "email": "not-an-address"}, "email"),
        ({"kind": "access", "connection": "shop", "email": 7}, "email"),
        ({"kind": "access", "connection": "shop", "phone": "555 0006"}, "phone"),
        (
            {"kind": "access", "connection": "shop", "email": "a@b.co", "phone": "+15005550006"},
            "phone",
        ),
        (
            {"kind": "access", "connection": "shop", "email": "a@b.co", "regulation": "lgpd"},
            "regulation",
        ),
        ({"kind": "access", "connection": "shop", "email": "a@b.co", "who": "me"}, "who"),
    ],
)
def test_bad_input_is_422_naming_the_field_and_nothing_is_queued(
    api: Api, body: dict[str, Any], field: str
) -> None:
    api.connect(api.a)
    reply = api.a.post("/api/v1/privacy-requests", json=body)

    assert reply.status_code == 422, reply.text
    assert reply.json()["error"]["field"] == field
    assert reply.json()["error"]["message"].startswith(f"{field}:")
    assert "not-an-address" not in reply.text  # the subject is not echoed back
    assert api.a.get("/api/v1/privacy-requests").json() == []
    assert api.a.get("/api/v1/jobs").json() == []
    assert api.enqueued == []


def test_another_workspaces_requests_and_connections_are_not_found(api: Api) -> None:
    shop = api.connect(api.a)
    made = api.a.post(
        "/api/v1/privacy-requests",
        json={"kind": "access", "connection": shop["id"], "email": "a@b.co"},
    ).json()

    assert api.b.get(f"/api/v1/privacy-requests/{made['id']}").status_code == 404
    assert api.b.get("/api/v1/privacy-requests").json() == []
    by_b = api.b.post(
        "/api/v1/privacy-requests",
        json={"kind": "deletion", "connection": shop["id"], "email": "a@b.co"},
    )
    assert by_b.status_code == 422
    assert by_b.json()["error"]["field"] == "connection"
    with api.anonymous() as anonymous:
        assert anonymous.get("/api/v1/privacy-requests").status_code == 401
    assert api.a.get("/api/v1/privacy-requests/nope").status_code == 404


def test_an_access_request_is_confirmed_once_its_job_reports(
    api: Api, worker: InProcessService
) -> None:
    shop = api.connect(api.a)
    _, email = _first_profile(api.emulator)
    made = api.a.post(
        "/api/v1/privacy-requests",
        json={"kind": "access", "connection": shop["id"], "email": email},
    ).json()
    worker.queue(made["job"]["id"])

    done = wait_for(api.appdb, made["job"]["id"])

    assert done.state == "succeeded", done.last_error
    found = api.a.get(f"/api/v1/privacy-requests/{made['id']}").json()
    assert found["state"] == "confirmed"
    assert found["confirmed_at"] is not None
    assert found["job"] == {"id": made["job"]["id"], "state": "succeeded"}
    assert found["due_at"] == made["due_at"]
    # the report, sealed in the job row, is opened for the caller of that job alone
    job = api.a.get(f"/api/v1/jobs/{made['job']['id']}").json()
    assert job["result"]["report_count"] == 1
    assert [r["email"] for r in job["result"]["reports"]] == [email]
    listed = api.a.get("/api/v1/jobs").json()
    assert "reports" not in listed[0]["result"]
    stored = b"".join(p.read_bytes() for p in api.data_dir.glob("app.sqlite3*"))
    assert email.encode() not in stored


def test_a_deletion_request_goes_through_requested_to_confirmed(
    api: Api, worker: InProcessService, emulator_factory: Callable[..., EmulatorServer]
) -> None:
    # its own account (profiles are deleted), which deletes at once when asked
    server = emulator_factory(deletion_delay_seconds=0)
    reply = api.a.post(
        "/api/v1/connections",
        json={"name": "gone", "api_key": server.api_key, "base_url": server.base_url},
    )
    assert reply.status_code == 201, reply.text
    profile_id, email = _first_profile(server)
    made = api.a.post(
        "/api/v1/privacy-requests",
        json={"kind": "deletion", "connection": "gone", "email": email},
    ).json()
    worker.queue(made["job"]["id"])

    done = wait_for(api.appdb, made["job"]["id"])

    assert done.state == "succeeded", done.last_error
    assert profile_id not in emulator_ids(server)
    found = api.a.get(f"/api/v1/privacy-requests/{made['id']}").json()
    assert found["state"] == "confirmed", found
    assert found["requested_at"] is not None
    assert found["confirmed_at"] is not None
    listed = api.a.get("/api/v1/privacy-requests").json()
    assert [(r["id"], r["state"]) for r in listed] == [(made["id"], "confirmed")]


def test_a_request_whose_job_is_cancelled_says_so(api: Api) -> None:
    shop = api.connect(api.a)
    made = api.a.post(
        "/api/v1/privacy-requests",
        json={"kind": "deletion", "connection": shop["id"], "email": "a@b.co"},
    ).json()

    assert api.a.post(f"/api/v1/jobs/{made['job']['id']}/cancel").status_code == 200

    found = api.a.get(f"/api/v1/privacy-requests/{made['id']}").json()
    assert found["state"] == "cancelled"
    assert found["job"]["state"] == "cancelled"
