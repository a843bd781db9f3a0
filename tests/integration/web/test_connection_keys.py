"""A connection's key rotated (verified first), its scopes checked per capability, and a name
created once however many requests race for it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from kbridge.connections import ConnectionConflictError, Sender
from kbridge.emulator.http.auth import ALL_SCOPES
from kbridge.emulator.server import EmulatorServer
from kbridge.service.connection_store import SqlConnectionStore
from tests.integration.web.conftest import Api

pytestmark = pytest.mark.integration

PRIVACY_ACCESS = ("accounts:read", "profiles:read", "events:read", "lists:read", "segments:read")


def mint_key(server: EmulatorServer, scopes: tuple[str, ...] | list[str], account: int = 0) -> str:
    reply = httpx.post(
        f"{server.base_url}/_emulator/keys", json={"scopes": list(scopes), "account": account}
    )
    reply.raise_for_status()
    key: str = reply.json()["key"]
    return key


def stored_key(api: Api, workspace_id: str, name: str) -> str:
    store: SqlConnectionStore = api.app.state.kbridge.store(workspace_id)
    key: str = store.secrets(name)["api_key"]
    return key


# -- rotate -------------------------------------------------------------------------------------


def test_rotate_verifies_the_new_key_then_replaces_the_old_in_place(api: Api) -> None:
    created = api.connect(api.a)
    new_key = mint_key(api.emulator, sorted(ALL_SCOPES))
    api.clock.advance(3600)

    reply = api.a.post(f"/api/v1/connections/{created['id']}/rotate", json={"api_key": new_key})

    assert reply.status_code == 200, reply.text
    rotated = reply.json()
    assert rotated["id"] == created["id"]
    assert rotated["connected_at"] == created["connected_at"]
    assert rotated["rotated_at"] == "2026-03-01T10:00:00Z"
    assert rotated["warehouse"] == created["warehouse"]
    assert new_key not in reply.text
    assert stored_key(api, api.workspace_a, "shop") == new_key
    assert api.a.get(f"/api/v1/connections/{created['id']}").json() == rotated


@pytest.mark.parametrize(
    ("api_key", "says"),
    [("pk_" + "0" * 34, "refused"), ("not-a-key", "pk_"), ("", "pk_")],
)
def test_a_refused_key_is_422_naming_api_key_and_the_old_key_stays(
    api: Api, api_key: str, says: str
) -> None:
    created = api.connect(api.a)

    reply = api.a.post(f"/api/v1/connections/{created['id']}/rotate", json={"api_key": api_key})

    assert reply.status_code == 422, reply.text
    assert reply.json()["error"]["field"] == "api_key"
    assert says in reply.json()["error"]["message"]
    assert stored_key(api, api.workspace_a, "shop") == api.emulator.api_key
    assert api.a.get(f"/api/v1/connections/{created['id']}").json()["rotated_at"] is None


def test_a_key_of_another_account_is_refused_naming_api_key(
    api: Api, emulator_factory: Callable[..., EmulatorServer]
) -> None:
    two = emulator_factory(accounts=2)
    reply = api.a.post(
        "/api/v1/connections",
        json={"name": "shop", "api_key": two.api_key, "base_url": two.base_url},
    )
    assert reply.status_code == 201, reply.text
    other_account = mint_key(two, sorted(ALL_SCOPES), account=1)

    rotate = api.a.post(
        f"/api/v1/connections/{reply.json()['id']}/rotate", json={"api_key": other_account}
    )

    assert rotate.status_code == 422, rotate.text
    assert rotate.json()["error"]["field"] == "api_key"
    assert "account" in rotate.json()["error"]["message"]
    assert stored_key(api, api.workspace_a, "shop") == two.api_key


def test_rotate_is_404_for_another_workspace_and_422_without_a_key(api: Api) -> None:
    created = api.connect(api.a)
    good = {"api_key": api.emulator.api_key}
    assert api.b.post(f"/api/v1/connections/{created['id']}/rotate", json=good).status_code == 404
    assert api.a.post("/api/v1/connections/nope/rotate", json=good).status_code == 404
    missing = api.a.post(f"/api/v1/connections/{created['id']}/rotate", json={})
    assert missing.status_code == 422
    assert missing.json()["error"]["field"] == "api_key"
    extra = api.a.post(f"/api/v1/connections/{created['id']}/rotate", json={**good, "name": "x"})
    assert extra.status_code == 422
    assert extra.json()["error"]["field"] == "name"


# -- scopes -------------------------------------------------------------------------------------


def _by_capability(reply: httpx.Response) -> dict[str, dict[str, Any]]:
    assert reply.status_code == 200, reply.text
    return {c["capability"]: c for c in reply.json()["capabilities"]}


def test_scopes_name_what_each_capability_lacks(api: Api) -> None:
    key = mint_key(api.emulator, PRIVACY_ACCESS)
    created = api.connect(api.a, api_key=key)

    reply = api.a.get(f"/api/v1/connections/{created['id']}/scopes")

    found = _by_capability(reply)
    assert reply.json()["connection"] == created["id"]
    assert set(reply.json()["granted"]) == set(PRIVACY_ACCESS)
    assert found["privacy-access"]["ok"] is True
    assert found["privacy-access"]["missing"] == []
    assert found["privacy-delete"]["ok"] is False
    assert found["privacy-delete"]["missing"] == ["data-privacy:write"]
    assert "campaigns:write" in found["campaigns-publish"]["missing"]
    assert found["connect"]["needs"] == ["accounts:read"]
    assert found["connect"]["ok"] is True


def test_scopes_are_404_for_another_workspaces_connection(api: Api) -> None:
    created = api.connect(api.a)
    assert api.b.get(f"/api/v1/connections/{created['id']}/scopes").status_code == 404
    assert api.a.get("/api/v1/connections/nope/scopes").status_code == 404


# -- one name, created once --------------------------------------------------------------------


def test_the_store_in_create_mode_refuses_a_name_that_exists_and_keeps_its_key(api: Api) -> None:
    store: SqlConnectionStore = api.app.state.kbridge.store(api.workspace_a)
    fields: dict[str, Any] = {
        "kind": "api_key",
        "base_url": "http://127.0.0.1:1",
        "account_id": "ACC",
        "account_name": None,
        "sender": Sender(),
        "capabilities": (),
        "scopes": (),
    }
    first = store.upsert("shop", secrets={"api_key": "pk_first"}, mode="create", **fields)
    with pytest.raises(ConnectionConflictError):
        store.upsert("shop", secrets={"api_key": "pk_second"}, mode="create", **fields)
    assert store.secrets("shop") == {"api_key": "pk_first"}
    assert store.get("shop").rotated_at is None
    assert store.get("shop").id == first.id


def test_two_requests_creating_one_name_at_once_make_one_connection(api: Api) -> None:
    keys = [mint_key(api.emulator, sorted(ALL_SCOPES)) for _ in range(2)]
    replies: dict[str, httpx.Response] = {}
    start = threading.Barrier(2)

    def create(key: str) -> None:
        with httpx.Client(
            base_url=api.base_url, headers=dict(api.a.headers), timeout=30.0
        ) as client:
            start.wait()
            replies[key] = client.post(
                "/api/v1/connections",
                json={"name": "shop", "api_key": key, "base_url": api.emulator.base_url},
            )

    threads = [threading.Thread(target=create, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    statuses = sorted(reply.status_code for reply in replies.values())
    assert statuses == [201, 409], [r.text for r in replies.values()]
    winner = next(key for key, reply in replies.items() if reply.status_code == 201)
    assert stored_key(api, api.workspace_a, "shop") == winner
    listed = api.a.get("/api/v1/connections").json()
    assert len(listed) == 1
    assert listed[0]["rotated_at"] is None
