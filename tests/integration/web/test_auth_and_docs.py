"""Who may call the API: a bearer token of a workspace; nobody sees another workspace."""

from __future__ import annotations

import pytest

from tests.integration.web.conftest import Api

pytestmark = pytest.mark.integration

ROUTES = [
    ("GET", "/api/v1/connections"),
    ("POST", "/api/v1/connections"),
    ("GET", "/api/v1/connections/x"),
    ("DELETE", "/api/v1/connections/x"),
    ("GET", "/api/v1/jobs"),
    ("POST", "/api/v1/jobs"),
    ("GET", "/api/v1/jobs/x"),
    ("POST", "/api/v1/jobs/x/cancel"),
    ("POST", "/api/v1/jobs/x/retry"),
    ("GET", "/api/v1/jobs/x/events"),
    ("GET", "/api/v1/schedules"),
    ("POST", "/api/v1/schedules"),
    ("DELETE", "/api/v1/schedules/x"),
]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer kbt_not-a-token-of-ours"},
    ],
    ids=["none", "empty", "basic", "unknown"],
)
def test_every_route_refuses_a_request_without_a_valid_token(
    api: Api, headers: dict[str, str]
) -> None:
    with api.anonymous() as client:
        for method, path in ROUTES:
            reply = client.request(method, path, headers=headers, json={})
            assert reply.status_code == 401, (method, path, reply.text)
            assert reply.headers["www-authenticate"] == "Bearer"
            assert reply.json()["error"]["status"] == 401


def test_a_revoked_token_is_refused(api: Api) -> None:
    issued = api.appdb.create_token(api.workspace_a)
    with api.anonymous() as client:
        auth = {"Authorization": f"Bearer {issued.token}"}
        assert client.get("/api/v1/jobs", headers=auth).status_code == 200
        api.appdb.revoke_token(api.workspace_a, issued.id)
        reply = client.get("/api/v1/jobs", headers=auth)
    assert reply.status_code == 401
    assert "revoked" in reply.json()["error"]["message"]


def test_a_workspace_cannot_see_or_touch_another_workspaces_objects(api: Api) -> None:
    connection = api.connect(api.a)
    job = api.a.post("/api/v1/jobs", json={"kind": "sync", "connection": connection["id"]}).json()
    schedule = api.a.post(
        "/api/v1/schedules", json={"connection": connection["id"], "daily_at": "06:00"}
    ).json()

    assert api.b.get("/api/v1/connections").json() == []
    assert api.b.get("/api/v1/jobs").json() == []
    assert api.b.get("/api/v1/schedules").json() == []
    for method, path in [
        ("GET", f"/api/v1/connections/{connection['id']}"),
        ("DELETE", f"/api/v1/connections/{connection['id']}"),
        ("GET", f"/api/v1/jobs/{job['id']}"),
        ("POST", f"/api/v1/jobs/{job['id']}/cancel"),
        ("POST", f"/api/v1/jobs/{job['id']}/retry"),
        ("GET", f"/api/v1/jobs/{job['id']}/events"),
        ("DELETE", f"/api/v1/schedules/{schedule['id']}"),
    ]:
        reply = api.b.request(method, path)
        assert reply.status_code == 404, (method, path, reply.text)
    # nor can b use a's connection, by id or by name
    for ref in (connection["id"], connection["name"]):
        reply = api.b.post("/api/v1/jobs", json={"kind": "sync", "connection": ref})
        assert reply.status_code == 422
        assert reply.json()["error"]["field"] == "connection"
        reply = api.b.post("/api/v1/schedules", json={"connection": ref, "daily_at": "06:00"})
        assert reply.status_code == 422
        assert reply.json()["error"]["field"] == "connection"

    # and a's objects are untouched by b's attempts
    assert api.a.get(f"/api/v1/connections/{connection['id']}").status_code == 200
    assert api.a.get(f"/api/v1/jobs/{job['id']}").json()["state"] == "queued"
    assert [s["id"] for s in api.a.get("/api/v1/schedules").json()] == [schedule["id"]]


def test_the_openapi_document_and_docs_are_served(api: Api) -> None:
    with api.anonymous() as client:
        document = client.get("/api/v1/openapi.json")
        docs = client.get("/api/v1/docs")
    assert document.status_code == 200
    spec = document.json()
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    for path, method in [
        ("/api/v1/connections", "post"),
        ("/api/v1/connections/{connection_id}", "delete"),
        ("/api/v1/jobs", "post"),
        ("/api/v1/jobs/{job_id}/retry", "post"),
        ("/api/v1/jobs/{job_id}/events", "get"),
        ("/api/v1/schedules", "post"),
        ("/api/v1/schedules/{schedule_id}", "delete"),
    ]:
        assert method in paths[path], (path, method)
    kinds = spec["components"]["schemas"]["JobIn"]["properties"]["kind"]["enum"]
    assert {"sync", "privacy_access", "privacy_delete", "campaign_publish"} <= set(kinds)
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


def test_an_unknown_route_is_a_json_404(api: Api) -> None:
    reply = api.a.get("/api/v1/nothing-here")
    assert reply.status_code == 404
    assert reply.json()["error"]["status"] == 404
