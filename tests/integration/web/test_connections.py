"""POST /connections verifies the key against the emulator before anything is stored."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from kbridge.catalog import REVISION
from kbridge.connections import generate_master_key
from kbridge.emulator.server import EmulatorServer
from kbridge.web import create_app
from tests.integration.web.conftest import Api, serve

pytestmark = pytest.mark.integration


def emulator_account_id(server: EmulatorServer) -> str:
    reply = httpx.get(
        f"{server.base_url}/api/accounts",
        headers={"Authorization": f"Klaviyo-API-Key {server.api_key}", "revision": REVISION},
    )
    found: str = reply.json()["data"][0]["id"]
    return found


def test_a_good_key_makes_a_connection_with_its_account_and_a_default_warehouse(api: Api) -> None:
    reply = api.a.post(
        "/api/v1/connections",
        json={
            "name": "shop-eu",
            "api_key": api.emulator.api_key,
            "base_url": api.emulator.base_url,
            "rate_limits": 0.5,
        },
    )
    assert reply.status_code == 201, reply.text
    created = reply.json()
    assert created["name"] == "shop-eu"
    assert created["account_id"] == emulator_account_id(api.emulator)
    assert created["base_url"] == api.emulator.base_url
    assert created["rate_limits"] == "0.5"
    assert created["kind"] == "api_key"
    assert "accounts:read" in created["scopes"]
    assert created["connected_at"] == datetime(2026, 3, 1, 9, 0, tzinfo=UTC).isoformat().replace(
        "+00:00", "Z"
    )
    expected = api.data_dir.resolve() / "warehouses" / api.workspace_a / "shop-eu.duckdb"
    assert created["warehouse"] == f"duckdb:///{expected}"
    assert expected.parent.is_dir()
    assert api.emulator.api_key not in reply.text

    listed = api.a.get("/api/v1/connections")
    assert listed.status_code == 200
    assert [c["id"] for c in listed.json()] == [created["id"]]
    one = api.a.get(f"/api/v1/connections/{created['id']}")
    assert one.json() == created
    assert api.emulator.api_key not in listed.text + one.text


def test_a_given_warehouse_is_kept_and_its_password_never_shown(api: Api) -> None:
    created = api.connect(api.a, warehouse="postgresql://kb:hunter2@db.internal:5432/kb")
    assert created["warehouse"] == "postgresql://kb:***@db.internal:5432/kb"
    stored = api.a.get(f"/api/v1/connections/{created['id']}").text
    assert "hunter2" not in stored


@pytest.mark.parametrize(
    ("api_key", "says"),
    [
        ("pk_" + "0" * 34, "refused"),  # the right shape, but no account has it
        ("not-a-key", "pk_"),  # refused before any request
        ("Bearer pk_abc", "without the"),
    ],
)
def test_a_bad_key_is_422_naming_api_key_and_nothing_is_stored(
    api: Api, api_key: str, says: str
) -> None:
    reply = api.a.post(
        "/api/v1/connections",
        json={"name": "shop", "api_key": api_key, "base_url": api.emulator.base_url},
    )
    assert reply.status_code == 422, reply.text
    error = reply.json()["error"]
    assert error["field"] == "api_key"
    assert error["message"].startswith("api_key: ")
    assert says in error["message"]
    assert api_key not in reply.text
    assert api.a.get("/api/v1/connections").json() == []
    assert not (api.data_dir / "warehouses").exists()


def test_a_name_taken_in_the_workspace_is_409_but_another_workspace_may_use_it(api: Api) -> None:
    first = api.connect(api.a)
    again = api.a.post(
        "/api/v1/connections",
        json={"name": "shop", "api_key": api.emulator.api_key, "base_url": api.emulator.base_url},
    )
    assert again.status_code == 409
    assert again.json()["error"]["field"] == "name"
    other = api.connect(api.b)
    assert other["id"] != first["id"]
    assert other["account_id"] == first["account_id"]
    assert other["warehouse"] != first["warehouse"]  # one default file per workspace


def test_delete_forgets_the_connection_and_its_secret(api: Api) -> None:
    created = api.connect(api.a)
    reply = api.a.delete(f"/api/v1/connections/{created['id']}")
    assert reply.status_code == 204
    assert api.a.get(f"/api/v1/connections/{created['id']}").status_code == 404
    assert api.a.get("/api/v1/connections").json() == []
    assert api.a.delete(f"/api/v1/connections/{created['id']}").status_code == 404
    with api.appdb.engine.connect() as conn:
        left = conn.exec_driver_sql("SELECT count(*) FROM connections").scalar()
    assert left == 0


def test_an_unreachable_base_url_is_422_naming_base_url(api: Api) -> None:
    reply = api.a.post(
        "/api/v1/connections",
        json={"name": "shop", "api_key": api.emulator.api_key, "base_url": "http://127.0.0.1:9"},
    )
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"]["field"] == "base_url"
    assert api.a.get("/api/v1/connections").json() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"api_key": "pk_x"}, "name"),
        ({"name": "shop"}, "api_key"),
        ({"name": 5, "api_key": "pk_x"}, "name"),
        ({"name": "shop", "api_key": 12345}, "api_key"),
        ({"name": "no spaces", "api_key": "pk_x"}, "name"),
        ({"name": "shop", "api_key": "pk_x", "rate_limits": "fast"}, "rate_limits"),
        ({"name": "shop", "api_key": "pk_x", "rate_limits": -1}, "rate_limits"),
        ({"name": "shop", "api_key": "pk_x", "rate_limits": True}, "rate_limits"),
        ({"name": "shop", "api_key": "pk_x", "base_url": "ftp://x"}, "base_url"),
        ({"name": "shop", "api_key": "pk_x", "warehouse": "duckdb:///rel.duckdb"}, "warehouse"),
        ({"name": "shop", "api_key": "pk_x", "warehouse": "mysql://x/y"}, "warehouse"),
        ({"name": "shop", "api_key": "pk_x", "colour": "red"}, "colour"),
    ],
)
def test_bad_input_is_422_naming_the_field(api: Api, body: dict[str, object], field: str) -> None:
    reply = api.a.post("/api/v1/connections", json=body)
    assert reply.status_code == 422, reply.text
    error = reply.json()["error"]
    assert error["field"] == field, error
    assert error["message"].startswith(f"{field}: ")
    assert "pk_x" not in reply.text  # pydantic's echo of the input is never passed on
    assert "Traceback" not in reply.text


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b'"a string"', b""])
def test_a_body_that_is_not_a_json_object_is_422_naming_the_body(api: Api, content: bytes) -> None:
    reply = api.a.post(
        "/api/v1/connections", content=content, headers={"content-type": "application/json"}
    )
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"]["field"] == "body"


def test_a_master_key_that_does_not_open_the_database_is_one_clear_line(api: Api) -> None:
    api.connect(api.a)
    wrong = create_app(api.appdb, data_dir=api.data_dir, master_key=generate_master_key())
    with serve(wrong) as base_url:
        reply = httpx.get(
            f"{base_url}/api/v1/connections",
            headers={"Authorization": api.a.headers["Authorization"]},
            timeout=30.0,
        )
    assert reply.status_code == 500
    assert "KBRIDGE_MASTER_KEY" in reply.json()["error"]["message"]
    assert "Traceback" not in reply.text
