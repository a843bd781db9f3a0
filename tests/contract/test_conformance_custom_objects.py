"""Custom objects, judged by the schemas in Klaviyo's OpenAPI spec.

A scripted session creates a data source, an object type with an active
schema and source mapping, ingests raw records (one of them invalid) singly
and in bulk, then calls every GET of the tag with real ids, plain and with
each ``include``. Every body, the errors' included, must validate against the
spec's schema for its status.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kbridge import catalog
from kbridge.catalog import Operation
from kbridge.emulator import EmulatorConfig, EmulatorServer, SimClock
from kbridge.emulator.backend import EmulatorBackend
from kbridge.testing.plugin import http_client_for
from tests.contract.test_conformance_flows_images_tags import check, expect_400, send

pytestmark = pytest.mark.contract

PROPS = [
    {"id": 1, "name": "name", "type": "string"},
    {"id": 2, "name": "points", "type": "int"},
    {"id": 3, "name": "joined", "type": "timestamp"},
]


def mapping(source: str) -> list[dict[str, Any]]:
    return [
        {
            "id": p["id"],
            "type": "simple",
            "source": {"source_id": source, "id_path": "$['id']", "data_path": f"$['{p['name']}']"},
        }
        for p in PROPS
    ]


def raw(**record: Any) -> dict[str, Any]:
    return {"type": "data-source-record", "attributes": {"record": record}}


def one(source: str, record: dict[str, Any]) -> dict[str, Any]:
    return {
        "data": {
            "type": "data-source-record-create-job",
            "attributes": {"data-source-record": {"data": record}},
            "relationships": {"data-source": {"data": {"type": "data-source", "id": source}}},
        }
    }


@pytest.fixture(scope="module")
def session() -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    config = EmulatorConfig(seed=12, profiles=30, events=300, rate_limit_factor=None)
    backend = EmulatorBackend(config, SimClock())
    with EmulatorServer(config, backend=backend) as server, http_client_for(server) as http:
        ids: dict[str, str] = {}
        source = {"type": "data-source", "attributes": {"title": "Loyalty"}}
        ids["data-source"] = send(
            http, "create_data_source", "/api/data-sources", {"data": source}
        )["data"]["id"]
        schema = {
            "type": "object-schema",
            "attributes": {
                "properties": PROPS,
                "required": ["name"],
                "status": "active",
                "source-mapping": {
                    "data": {
                        "type": "source-mapping",
                        "attributes": {"property_mappings": mapping(ids["data-source"])},
                    }
                },
            },
        }
        otype = {
            "type": "object-type",
            "attributes": {"title": "Member", "object-schema": {"data": schema}},
        }
        created = send(http, "create_object_type", "/api/object-types", {"data": otype})["data"]
        ids["object-type"] = created["id"]
        ids["object-schema"] = created["relationships"]["current-schema"]["data"]["id"]
        draft = {
            "type": "object-schema",
            "attributes": {"title": "Member", "properties": PROPS},
            "relationships": {
                "object-type": {"data": {"type": "object-type", "id": ids["object-type"]}}
            },
        }
        ids["draft"] = send(http, "create_object_schema", "/api/object-schemas", {"data": draft})[
            "data"
        ]["id"]
        schema_body = send(
            http, "get_object_schema", f"/api/object-schemas/{ids['object-schema']}"
        )["data"]
        ids["source-mapping"] = schema_body["relationships"]["source-mapping"]["data"]["id"]
        path = "/api/data-source-record-create-jobs"
        record = raw(id="M1", name="Ada", points=10, joined="2026-01-02T03:04:05Z")
        assert (
            send(http, "create_data_source_record", path, one(ids["data-source"], record)) is None
        )
        rows = [
            raw(id="M2", name="Bo", points=3),
            raw(id="M3", name="Cy", points="many"),
            raw(id="M1", points=11),
            raw(id="M2", points="lots"),
        ]
        bulk = {
            "data": {
                "type": "data-source-record-bulk-create-job",
                "attributes": {"data-source-records": {"data": rows}},
                "relationships": {
                    "data-source": {"data": {"type": "data-source", "id": ids["data-source"]}}
                },
            }
        }
        send(
            http,
            "bulk_create_data_source_records",
            "/api/data-source-record-bulk-create-jobs",
            bulk,
        )
        http.post("/_emulator/clock", json={"advance_seconds": 600})
        ids["object-record"] = f"{ids['object-type']}:::M1"
        appointment = http.get("/api/object-types").json()["data"][0]
        assert appointment["attributes"]["title"] == "Appointment"
        ids["appointment"] = appointment["relationships"]["current-schema"]["data"]["id"]
        links = f"/api/object-schemas/{ids['object-schema']}/relationships"
        booked = {"type": "object-schema", "id": ids["appointment"], "meta": {"name": "booked"}}
        send(
            http, "create_object_schema_relationship", f"{links}/object-schemas", {"data": [booked]}
        )
        member = {"type": "profile-object-schema", "id": "profile", "meta": {"name": "member"}}
        send(
            http,
            "create_profile_schema_relationship",
            f"{links}/profile-object-schemas",
            {"data": [member]},
        )
        yield http, ids


def _ops() -> list[Operation]:
    return list(catalog.by_tag("Custom Objects"))


def test_every_custom_object_operation_is_emulated() -> None:
    backend = EmulatorBackend(EmulatorConfig(profiles=0, events=0), SimClock())
    assert {op.operation_id for op in _ops()} <= backend.implemented


def _path(op: Operation, ids: dict[str, str]) -> str:
    head = op.path.split("/")[2][:-1]
    return op.path.replace("{id}", ids[head])


@pytest.mark.parametrize(
    "op", [op for op in _ops() if op.method == "GET"], ids=lambda op: op.operation_id
)
def test_every_get_matches_the_spec(
    session: tuple[httpx.Client, dict[str, str]], op: Operation
) -> None:
    http, ids = session
    path = _path(op, ids)
    for extra in [{}] + [{"include": inc} for inc in op.include]:
        response = http.get(path, params=extra)
        assert response.status_code == 200, f"{op.operation_id}: {response.text[:300]}"
        body = check(op, response)
        assert body["data"], f"{op.operation_id} {extra}: empty data"
        if extra:
            assert body.get("included"), f"{op.operation_id} {extra}: nothing included"


def test_ingestion_builds_typed_records_and_logs_what_does_not_fit(
    session: tuple[httpx.Client, dict[str, str]],
) -> None:
    http, ids = session
    tid = ids["object-type"]
    records = send(http, "get_records_for_object_type", f"/api/object-types/{tid}/object-records")
    by_id = {r["id"]: r["attributes"]["record_properties"] for r in records["data"]}
    assert by_id == {
        f"{tid}:::M1": {"name": "Ada", "points": 11, "joined": "2026-01-02T03:04:05+00:00"},
        f"{tid}:::M2": {"name": "Bo", "points": 3},
    }
    logs = send(
        http, "get_ingestion_logs_for_object_type", f"/api/object-types/{tid}/object-ingestion-logs"
    )["data"]
    assert len(logs) == 2

    def logs_for(record: str) -> list[dict[str, Any]]:
        return http.get(
            f"/api/object-types/{tid}/object-ingestion-logs",
            params={"filter": f"equals(record_id,'{record}')"},
        ).json()["data"]

    error = logs_for("M3")[0]["attributes"]["errors"][0]
    assert (error["property"], error["code"], error["invalid_value"]) == (
        "points",
        "int_type",
        '"many"',
    )
    [bad_update] = logs_for("M2")  # the record keeps its last good values (points 3)
    assert bad_update["relationships"]["object-record"]["data"]["id"] == f"{tid}:::M2"
    assert logs_for("M1") == []
    seeded = http.get("/api/object-types", params={"filter": "equals(namespace,'custom-objects')"})
    titles = {t["attributes"]["title"] for t in seeded.json()["data"]}
    assert titles == {"Appointment", "Member"}


def test_schemas_move_from_draft_to_active(session: tuple[httpx.Client, dict[str, str]]) -> None:
    http, ids = session
    tid, draft = ids["object-type"], ids["draft"]
    edit = {
        "data": {
            "type": "object-schema",
            "id": ids["object-schema"],
            "attributes": {"title": "Renamed"},
        }
    }
    detail = expect_400(
        http, "update_object_schema", f"/api/object-schemas/{ids['object-schema']}", edit
    )
    assert "draft" in detail
    activate = {"data": {"type": "object-schema", "id": draft, "attributes": {"status": "active"}}}
    done = send(http, "update_object_schema", f"/api/object-schemas/{draft}", activate)["data"]
    assert done["attributes"]["status"] == "active"
    assert done["attributes"]["published_at"]
    current = send(
        http,
        "get_current_schema_id_for_object_type",
        f"/api/object-types/{tid}/relationships/current-schema",
    )["data"]
    assert current["id"] == draft
    versions = http.get(f"/api/object-types/{tid}/relationships/schema-versions").json()["data"]
    assert [v["id"] for v in versions] == [ids["object-schema"], draft]
    no_id = send(
        http,
        "get_draft_schema_id_for_object_type",
        f"/api/object-types/{tid}/relationships/draft-schema",
    )
    assert no_id["data"] is None
    no_draft = http.get(f"/api/object-types/{tid}/draft-schema")
    assert no_draft.status_code == 404
    check(catalog.get("get_draft_schema_for_object_type"), no_draft)


def test_records_are_deleted_by_a_bulk_job_and_types_take_theirs_along(
    session: tuple[httpx.Client, dict[str, str]],
) -> None:
    http, ids = session
    tid = ids["object-type"]
    body = {
        "data": {
            "type": "object-record-bulk-delete-job",
            "relationships": {
                "object-records": {"data": [{"type": "object-record", "id": f"{tid}:::M2"}]}
            },
        }
    }
    assert (
        send(http, "bulk_delete_object_records", "/api/object-record-bulk-delete-jobs", body)
        is None
    )
    http.post("/_emulator/clock", json={"advance_seconds": 600})
    gone = http.get(f"/api/object-records/{tid}:::M2")
    assert gone.status_code == 404
    check(catalog.get("get_object_record"), gone)
    busy = http.delete(f"/api/data-sources/{ids['data-source']}")
    assert busy.status_code == 409
    check(catalog.get("delete_data_source"), busy)
    temp = {"type": "object-type", "attributes": {"title": "Temp"}}
    made = send(http, "create_object_type", "/api/object-types", {"data": temp})["data"]
    assert made["attributes"]["status"] == "undefined"
    assert send(http, "delete_object_type", f"/api/object-types/{made['id']}") is None
    assert http.get(f"/api/object-types/{made['id']}").status_code == 404


def test_custom_object_errors_are_spec_shaped(
    session: tuple[httpx.Client, dict[str, str]],
) -> None:
    http, ids = session
    dup = http.post(
        "/api/data-sources",
        json={"data": {"type": "data-source", "attributes": {"title": "Loyalty"}}},
    )
    assert dup.status_code == 409
    check(catalog.get("create_data_source"), dup)
    bad = {
        "type": "object-schema",
        "attributes": {"title": "X", "properties": [{"id": 1, "name": "a", "type": "money"}]},
        "relationships": {
            "object-type": {"data": {"type": "object-type", "id": ids["object-type"]}}
        },
    }
    assert "type" in expect_400(http, "create_object_schema", "/api/object-schemas", {"data": bad})
    patch = {
        "data": {
            "type": "source-mapping",
            "id": ids["source-mapping"],
            "attributes": {"property_mappings": [{"id": 99, "type": "constant", "value": 1}]},
        }
    }
    path = f"/api/source-mappings/{ids['source-mapping']}"
    assert "property" in expect_400(http, "update_source_mapping", path, patch)
    patch["data"]["attributes"]["property_mappings"] = [
        {"id": 1, "type": "constant", "value": "Everyone"}
    ]
    done = send(http, "update_source_mapping", path, patch)["data"]["attributes"]
    assert done["property_mappings"] == [{"id": 1, "type": "constant", "value": "Everyone"}]
    nowhere = one("01J00000000000000000000000", raw(id="x"))
    expect_400(http, "create_data_source_record", "/api/data-source-record-create-jobs", nowhere)


def test_scopes_guard_custom_objects() -> None:
    config = EmulatorConfig(seed=12, profiles=10, events=50, rate_limit_factor=None)
    with EmulatorServer(config) as server:
        minted = httpx.post(
            f"{server.base_url}/_emulator/keys", json={"scopes": ["custom-objects:read"]}
        )
        with http_client_for(server, key=minted.json()["key"]) as http:
            assert http.get("/api/object-types").status_code == 200
            denied = http.post("/api/data-sources", json={"data": {}})
            assert denied.status_code == 403
            check(catalog.get("create_data_source"), denied)


def test_schema_relationships_name_their_types(
    session: tuple[httpx.Client, dict[str, str]],
) -> None:
    http, ids = session
    sid, appointment = ids["object-schema"], ids["appointment"]
    links = f"/api/object-schemas/{sid}/relationships/object-schemas"
    listed = send(http, "get_object_schema_relationships", links)["data"]
    assert listed == [{"type": "object-schema", "id": f"{appointment}:::booked"}]
    schema = http.get(f"/api/object-schemas/{sid}", params={"include": "object-schemas"}).json()
    meta = schema["included"][0]["attributes"]["meta"]
    assert meta["name"] == "booked"
    again = {"type": "object-schema", "id": appointment, "meta": {"name": "booked"}}
    dup = http.post(links, json={"data": [again]})
    assert dup.status_code == 409
    check(catalog.get("create_object_schema_relationship"), dup)
    rename = {
        "type": "object-schema",
        "id": appointment,
        "meta": {"relationship_id": meta["relationship_id"], "name": "bookings"},
    }
    send(http, "update_object_schema_relationship", links, {"data": rename})
    renamed = send(http, "get_object_schema_relationships", links)["data"]
    assert renamed == [{"type": "object-schema", "id": f"{appointment}:::bookings"}]
    ghost = {"type": "object-schema", "id": "01J00000000000000000000000", "meta": {"name": "x"}}
    expect_400(http, "create_object_schema_relationship", links, {"data": [ghost]})
    gone = {
        "type": "object-schema",
        "id": appointment,
        "meta": {"relationship_id": meta["relationship_id"]},
    }
    send(http, "delete_object_schema_relationship", links, {"data": [gone]})
    assert send(http, "get_object_schema_relationships", links)["data"] == []
    profile_links = f"/api/object-schemas/{sid}/relationships/profile-object-schemas"
    wrong = {"type": "profile-object-schema", "id": "someone", "meta": {"name": "m"}}
    expect_400(http, "create_profile_schema_relationship", profile_links, {"data": [wrong]})
