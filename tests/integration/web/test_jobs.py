"""Jobs through the API: queued in the app database first, then the broker is told."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.web.conftest import Api

pytestmark = pytest.mark.integration


@pytest.fixture
def connection(api: Api) -> dict[str, Any]:
    return api.connect(api.a)


def test_a_job_is_queued_stored_and_handed_to_the_broker(
    api: Api, connection: dict[str, Any]
) -> None:
    reply = api.a.post(
        "/api/v1/jobs",
        json={
            "kind": "sync",
            "connection": connection["id"],
            "params": {"streams": ["events", "profiles"], "start_date": "2024-01-01T00:00:00Z"},
        },
    )
    assert reply.status_code == 202, reply.text
    created = reply.json()
    assert created == {"id": created["id"], "state": "queued"}
    assert reply.headers["location"] == f"/api/v1/jobs/{created['id']}"
    assert api.enqueued == [created["id"]]

    job = api.a.get(f"/api/v1/jobs/{created['id']}").json()
    assert job["kind"] == "sync"
    assert job["state"] == "queued"
    assert job["connection"] == connection["id"]
    # streams in declaration order, the date in UTC: what the worker will read
    assert job["params"] == {
        "streams": ["profiles", "events"],
        "start_date": "2024-01-01T00:00:00+00:00",
    }
    assert (job["progress"], job["error"], job["result"]) == (None, None, None)
    # what the worker sees is what the API stored
    stored = api.appdb.job(api.workspace_a, created["id"])
    assert stored.params == job["params"]
    assert stored.state == "queued"


def test_a_connection_may_be_named_instead_of_its_id(api: Api, connection: dict[str, Any]) -> None:
    reply = api.a.post("/api/v1/jobs", json={"kind": "privacy_access", "connection": "shop"})
    assert reply.status_code == 202, reply.text
    job = api.a.get(f"/api/v1/jobs/{reply.json()['id']}").json()
    assert job["connection"] == connection["id"]


def test_jobs_list_newest_first_and_filter_by_state(api: Api, connection: dict[str, Any]) -> None:
    ids = []
    for _ in range(3):
        ids.append(
            api.a.post("/api/v1/jobs", json={"kind": "sync", "connection": "shop"}).json()["id"]
        )
        api.clock.advance(1)
    api.a.post(f"/api/v1/jobs/{ids[1]}/cancel")
    everything = [j["id"] for j in api.a.get("/api/v1/jobs").json()]
    assert everything == ids[::-1]
    queued = api.a.get("/api/v1/jobs", params={"state": "queued"}).json()
    assert [j["id"] for j in queued] == [ids[2], ids[0]]
    both = api.a.get("/api/v1/jobs", params=[("state", "queued"), ("state", "cancelled")])
    assert len(both.json()) == 3
    assert len(api.a.get("/api/v1/jobs", params={"limit": 1}).json()) == 1
    bad = api.a.get("/api/v1/jobs", params={"state": "exploded"})
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "state"


def test_cancel_then_retry_queues_the_same_job_again(api: Api, connection: dict[str, Any]) -> None:
    job_id = api.a.post("/api/v1/jobs", json={"kind": "sync", "connection": "shop"}).json()["id"]

    early = api.a.post(f"/api/v1/jobs/{job_id}/retry")
    assert early.status_code == 409  # only a failed or cancelled job is retried

    cancelled = api.a.post(f"/api/v1/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == "cancelled"
    again = api.a.post(f"/api/v1/jobs/{job_id}/cancel")
    assert again.status_code == 409
    assert "already cancelled" in again.json()["error"]["message"]

    retried = api.a.post(f"/api/v1/jobs/{job_id}/retry")
    assert retried.status_code == 202
    assert retried.json()["state"] == "queued"
    assert api.enqueued == [job_id, job_id]
    events = api.a.get(f"/api/v1/jobs/{job_id}/events").json()
    assert [e["event"] for e in events] == ["queued", "cancelled", "retried"]
    assert events[2]["detail"] == {"was": "cancelled"}


def test_a_failed_job_shows_its_error_and_retry_starts_its_attempts_afresh(
    api: Api, connection: dict[str, Any]
) -> None:
    job_id = api.a.post("/api/v1/jobs", json={"kind": "sync", "connection": "shop"}).json()["id"]
    claimed = api.appdb.claim_job("worker-1", job_id=job_id)
    assert claimed is not None
    api.appdb.fail_job(job_id, "worker-1", "Klaviyo refused the key: reconnect", retry=False)

    failed = api.a.get(f"/api/v1/jobs/{job_id}").json()
    assert failed["state"] == "failed"
    assert failed["error"] == "Klaviyo refused the key: reconnect"
    assert failed["attempts"] == 1
    assert api.a.get("/api/v1/jobs", params={"state": "failed"}).json()[0]["id"] == job_id

    retried = api.a.post(f"/api/v1/jobs/{job_id}/retry").json()
    assert (retried["state"], retried["attempts"], retried["error"]) == ("queued", 0, None)
    assert api.appdb.claim_job("worker-2", job_id=job_id) is not None  # claimable again
    events = [e["event"] for e in api.a.get(f"/api/v1/jobs/{job_id}/events").json()]
    assert events == ["queued", "claimed", "failed", "retried", "claimed"]


def test_a_job_whose_connection_was_deleted_cannot_be_retried(
    api: Api, connection: dict[str, Any]
) -> None:
    job_id = api.a.post("/api/v1/jobs", json={"kind": "sync", "connection": "shop"}).json()["id"]
    api.a.post(f"/api/v1/jobs/{job_id}/cancel")
    assert api.a.delete(f"/api/v1/connections/{connection['id']}").status_code == 204
    job = api.a.get(f"/api/v1/jobs/{job_id}").json()
    assert job["connection"] is None  # the job's history stays
    reply = api.a.post(f"/api/v1/jobs/{job_id}/retry")
    assert reply.status_code == 409
    assert "deleted" in reply.json()["error"]["message"]


def test_the_broker_failing_leaves_the_job_queued(api: Api, connection: dict[str, Any]) -> None:
    def broken(job_id: str) -> None:
        raise ConnectionError("redis is down")

    api.app.state.kbridge.on_enqueued = broken
    reply = api.a.post("/api/v1/jobs", json={"kind": "sync", "connection": "shop"})
    assert reply.status_code == 202
    assert api.appdb.recover_jobs() == [reply.json()["id"]]


def test_unknown_ids_are_404(api: Api) -> None:
    for method, path in [
        ("GET", "/api/v1/jobs/nope"),
        ("POST", "/api/v1/jobs/nope/cancel"),
        ("POST", "/api/v1/jobs/nope/retry"),
        ("GET", "/api/v1/jobs/nope/events"),
    ]:
        reply = api.a.request(method, path)
        assert reply.status_code == 404, (method, path)
        assert reply.json()["error"]["message"] == "no such job in this workspace"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "launch_rockets", "connection": "shop"}, "kind"),
        ({"connection": "shop"}, "kind"),
        ({"kind": 3, "connection": "shop"}, "kind"),
        ({"kind": "sync"}, "connection"),
        ({"kind": "sync", "connection": "elsewhere"}, "connection"),
        ({"kind": "sync", "connection": ["shop"]}, "connection"),
        ({"kind": "sync", "connection": "shop", "params": []}, "params"),
        ({"kind": "sync", "connection": "shop", "params": {"streams": ["nope"]}}, "params.streams"),
        (
            {"kind": "sync", "connection": "shop", "params": {"streams": "profiles"}},
            "params.streams",
        ),
        ({"kind": "sync", "connection": "shop", "params": {"streams": []}}, "params.streams"),
        (
            {"kind": "sync", "connection": "shop", "params": {"start_date": "2024-01-01T00:00"}},
            "params.start_date",
        ),
        (
            {"kind": "sync", "connection": "shop", "params": {"start_date": "yesterday"}},
            "params.start_date",
        ),
        (
            {"kind": "sync", "connection": "shop", "params": {"full_refresh": "yes"}},
            "params.full_refresh",
        ),
        ({"kind": "sync", "connection": "shop", "params": {"speed": 11}}, "params.speed"),
        ({"kind": "sync", "connection": "shop", "priority": 1}, "priority"),
    ],
)
def test_bad_job_input_is_422_naming_the_field(
    api: Api, connection: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    reply = api.a.post("/api/v1/jobs", json=body)
    assert reply.status_code == 422, reply.text
    error = reply.json()["error"]
    assert error["field"] == field, error
    assert error["message"].startswith(f"{field}: ")
    assert api.a.get("/api/v1/jobs").json() == []
    assert api.enqueued == []


def test_malformed_json_is_422_naming_the_body(api: Api) -> None:
    reply = api.a.post(
        "/api/v1/jobs", content=b'{"kind": "sync",', headers={"content-type": "application/json"}
    )
    assert reply.status_code == 422
    error = reply.json()["error"]
    assert error["field"] == "body"
    assert "not valid JSON" in error["message"]


@pytest.mark.parametrize(
    ("content", "headers", "says"),
    [
        # nested beyond the parser's recursion limit: FastAPI's own answer would be a 400
        (b'{"a":' * 5000, {"content-type": "application/json"}, "not valid JSON"),
        # JSON sent without its content type is not read as JSON
        (b'{"kind": "sync", "connection": "shop"}', {"content-type": "text/plain"}, "JSON object"),
    ],
)
def test_a_body_not_read_as_a_json_object_is_422_naming_the_body(
    api: Api, content: bytes, headers: dict[str, str], says: str
) -> None:
    reply = api.a.post("/api/v1/jobs", content=content, headers=headers)
    assert reply.status_code == 422, reply.text
    error = reply.json()["error"]
    assert error["field"] == "body"
    assert says in error["message"]


def test_what_a_token_changes_is_in_the_audit_log(api: Api, connection: dict[str, Any]) -> None:
    job_id = api.a.post("/api/v1/jobs", json={"kind": "sync", "connection": "shop"}).json()["id"]
    api.a.post(f"/api/v1/jobs/{job_id}/cancel")
    api.a.post(f"/api/v1/jobs/{job_id}/retry")
    api.b.post(f"/api/v1/jobs/{job_id}/cancel")  # not found for b: nothing to audit
    with api.appdb.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT workspace_id, actor, action, target_id FROM audit_log ORDER BY id"
        ).all()
    assert [(r[0], r[2], r[3]) for r in rows] == [
        (api.workspace_a, "connection.create", connection["id"]),
        (api.workspace_a, "job.create", job_id),
        (api.workspace_a, "job.cancel", job_id),
        (api.workspace_a, "job.retry", job_id),
    ]
    assert len({r[1] for r in rows}) == 1
    assert rows[0][1].startswith("token:")
