"""The JSON:API documents the app builds from backend outcomes."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from kbridge.emulator.http.jsonapi import compile_fields, project
from tests.unit.emulator.http.test_app_fakes import JSONAPI, assert_error, client_for, make_app

pytestmark = [pytest.mark.unit, pytest.mark.anyio]

BASE = "http://emulator.test"


async def test_single_resource_has_absolute_links_and_relationship_links() -> None:
    app, *_ = make_app()
    async with client_for(app) as c:
        r = await c.get("/api/profiles/P001")
    assert r.status_code == 200
    assert r.headers["content-type"] == JSONAPI
    doc = r.json()
    data = doc["data"]
    assert data["links"] == {"self": f"{BASE}/api/profiles/P001/"}
    assert data["relationships"]["lists"] == {
        "data": [{"type": "list", "id": "L1"}],
        "links": {
            "self": f"{BASE}/api/profiles/P001/relationships/lists/",
            "related": f"{BASE}/api/profiles/P001/lists/",
        },
    }
    assert data["relationships"]["segments"] == {
        "links": {
            "self": f"{BASE}/api/profiles/P001/relationships/segments/",
            "related": f"{BASE}/api/profiles/P001/segments/",
        }
    }
    assert doc["links"] == {"self": f"{BASE}/api/profiles/P001"}
    # included is deduplicated and each included resource has its own links.self
    assert doc["included"] == [
        {
            "type": "list",
            "id": "L1",
            "attributes": {"name": "Newsletter"},
            "links": {"self": f"{BASE}/api/lists/L1/"},
        }
    ]


async def test_public_base_url_overrides_the_request_host() -> None:
    app, *_ = make_app(public_base_url="https://a.klaviyo.test")
    async with client_for(app) as c:
        r = await c.get("/api/profiles/P001")
    assert r.json()["data"]["links"]["self"] == "https://a.klaviyo.test/api/profiles/P001/"


async def test_pagination_links_keep_every_query_parameter_encoded() -> None:
    app, backend, *_ = make_app()
    params = {
        "page[size]": "2",
        "filter": 'equals(email,"a b@example.com")',
        "fields[profile]": "email",
    }
    async with client_for(app) as c:
        first = await c.get("/api/profiles", params=params)
        links = first.json()["links"]
        assert links["prev"] is None
        second = await c.get(links["next"])
        third = await c.get(second.json()["links"]["next"])
    nxt = urlsplit(links["next"])
    assert f"{nxt.scheme}://{nxt.netloc}{nxt.path}" == f"{BASE}/api/profiles"
    assert "%5B" in nxt.query  # brackets are URL-encoded, as Klaviyo's links are
    query = dict(parse_qsl(nxt.query))
    assert {k: query[k] for k in params} == params
    assert "page[cursor]" in query
    assert [p["id"] for p in second.json()["data"]] == ["P002", "P003"]
    assert second.json()["links"]["prev"] is not None
    assert third.json()["links"]["next"] is None
    assert [p["id"] for p in third.json()["data"]] == ["P004"]
    assert backend.calls[-1].query.cursor is not None


async def test_sparse_fieldsets_select_attributes_and_dotted_sub_fields() -> None:
    app, *_ = make_app()
    async with client_for(app) as c:
        r = await c.get("/api/profiles", params={"fields[profile]": "email,location.country"})
    assert r.status_code == 200, r.text
    for item in r.json()["data"]:
        assert set(item["attributes"]) == {"email", "location"}
        assert item["attributes"]["location"] == {"country": "US"}


def test_field_projection_whole_field_wins_over_sub_fields() -> None:
    attributes = {"location": {"country": "US", "city": "Boston"}, "email": "x@example.com"}
    assert project(attributes, compile_fields(["location.city", "location"])) == {
        "location": {"country": "US", "city": "Boston"}
    }
    assert project(attributes, compile_fields(["location.city.zip", "missing"])) == {"location": {}}


async def test_identifiers_only_and_bodiless_statuses() -> None:
    app, *_ = make_app()
    event = {
        "data": {
            "type": "event",
            "attributes": {"properties": {}, "metric": {}, "profile": {}},
        }
    }
    members = {"data": [{"type": "profile", "id": "P001"}]}
    async with client_for(app) as c:
        ids = await c.get("/api/lists/L1/relationships/profiles")
        accepted = await c.post("/api/events", json=event)
        added = await c.post("/api/lists/L1/relationships/profiles", json=members)
    assert ids.json()["data"] == [
        {"type": "profile", "id": "P001"},
        {"type": "profile", "id": "P002"},
    ]
    assert accepted.status_code == 202
    assert accepted.content == b""
    assert added.status_code == 204
    assert added.content == b""


async def test_backend_errors_keep_code_pointer_and_meta() -> None:
    app, *_ = make_app()
    body = {"data": {"type": "profile", "attributes": {"email": "user1@example.com"}}}
    async with client_for(app) as c:
        dup = await c.post("/api/profiles", json=body)
        missing = await c.get("/api/profiles/NOPE")
        created = await c.post(
            "/api/profiles", json={"data": {"type": "profile", "attributes": {"email": "n@x.io"}}}
        )
    error = assert_error(dup, 409, "duplicate_profile", pointer="/data/attributes")
    assert error["meta"] == {"duplicate_profile_id": "P001"}
    assert error["title"] == "Conflict."
    assert_error(missing, 404, "not_found")
    assert created.status_code == 201
    assert created.json()["data"]["links"]["self"] == f"{BASE}/api/profiles/PNEW/"


async def test_query_errors_come_from_the_catalogue() -> None:
    app, backend, *_ = make_app()
    async with client_for(app) as c:
        bad_include = await c.get("/api/profiles/P001", params={"include": "profiless"})
        bad_size = await c.get("/api/profiles", params={"page[size]": "1000"})
    assert_error(bad_include, 400, "invalid", parameter="include")
    assert_error(bad_size, 400, "invalid", parameter="page[size]")
    assert backend.calls == []


async def test_backend_runs_due_work_before_each_dispatch() -> None:
    app, backend, *_ = make_app()
    async with client_for(app) as c:
        await c.get("/api/accounts")
        await c.get("/api/accounts")
    assert backend.due_runs == 2
    assert [call.operation.operation_id for call in backend.calls] == ["get_accounts"] * 2


async def test_an_unexpected_backend_failure_is_a_jsonapi_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, backend, *_ = make_app()

    def explode(call: object) -> None:
        raise RuntimeError("boom")

    backend.dispatch = explode  # type: ignore[assignment,method-assign]
    async with client_for(app) as c:
        r = await c.get("/api/accounts")
    assert_error(r, 500, "error")
    assert "boom" not in r.text
    assert any("get_accounts" in rec.getMessage() or rec.exc_info for rec in caplog.records)
