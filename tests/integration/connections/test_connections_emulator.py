"""Key connections against the emulator over loopback: verify, probe, rotate, disconnect."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from kbridge.api.errors import AuthenticationError, PermissionDeniedError
from kbridge.connections import (
    DEFAULT_PROBED,
    ConnectionConflictError,
    ConnectionNotFoundError,
    ConnectionStore,
    check_connection,
    connect_with_key,
    disconnect,
    explain_permission_error,
    open_credentials,
    plan_scopes,
)
from kbridge.emulator import EmulatorConfig, EmulatorServer

pytestmark = pytest.mark.integration

CONFIG = EmulatorConfig(seed=7, profiles=60, events=200, rate_limit_factor=None)


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(CONFIG) as running:
        yield running


def mint_key(server: EmulatorServer, scopes: tuple[str, ...] | list[str]) -> str:
    reply = httpx.post(f"{server.base_url}/_emulator/keys", json={"scopes": list(scopes)})
    reply.raise_for_status()
    key: str = reply.json()["key"]
    return key


def account_id(server: EmulatorServer) -> str:
    reply = httpx.get(
        f"{server.base_url}/api/accounts",
        headers={"Authorization": f"Klaviyo-API-Key {server.api_key}", "revision": "2026-07-15"},
    )
    found: str = reply.json()["data"][0]["id"]
    return found


@pytest.mark.anyio
async def test_connect_verifies_the_key_and_records_the_account(
    server: EmulatorServer, store: ConnectionStore
) -> None:
    result = await connect_with_key(store, "shop", server.api_key, base_url=server.base_url)
    record = result.record
    assert not result.rotated
    assert record.account_id == account_id(server)
    assert record.account_name == "Northwind Outfitters"
    assert record.sender.email == "hello@northwind.example.com"
    assert record.base_url == server.base_url
    assert record.capabilities == DEFAULT_PROBED  # the full key serves everything
    assert set(plan_scopes(DEFAULT_PROBED).scopes) <= set(record.scopes)
    creds = open_credentials("shop", store=store)
    assert creds.connection_id == record.id
    assert server.api_key not in repr(creds)
    async with creds.client() as client:
        page = await client.get_document("get_profiles", params={"page[size]": 5})
    assert len(page.resources) == 5


@pytest.mark.anyio
async def test_rotating_the_key_keeps_the_connection_id(
    server: EmulatorServer, store: ConnectionStore
) -> None:
    first = (await connect_with_key(store, "shop", server.api_key, base_url=server.base_url)).record
    new_key = mint_key(server, plan_scopes(["connect", "sync"]).scopes)
    result = await connect_with_key(
        store, "shop", new_key, base_url=server.base_url, capabilities=["connect", "sync"]
    )
    assert result.rotated
    assert result.record.id == first.id
    assert result.record.connected_at == first.connected_at
    assert result.record.rotated_at is not None
    assert result.record.capabilities == ("connect", "sync")
    assert open_credentials("shop", store=store).api_key == new_key


@pytest.mark.anyio
async def test_a_key_for_another_account_cannot_replace_a_connection(
    server: EmulatorServer, store: ConnectionStore
) -> None:
    await connect_with_key(store, "shop", server.api_key, base_url=server.base_url)
    with (
        EmulatorServer(
            EmulatorConfig(seed=8, profiles=10, events=10, rate_limit_factor=None)
        ) as other,
        pytest.raises(ConnectionConflictError, match="another connection name"),
    ):
        await connect_with_key(
            store, "shop", other.api_key, base_url=other.base_url, capabilities=["connect"]
        )
    assert open_credentials("shop", store=store).api_key == server.api_key  # unchanged


@pytest.mark.anyio
async def test_an_unknown_key_is_refused_and_nothing_is_saved(
    server: EmulatorServer, store: ConnectionStore
) -> None:
    with pytest.raises(AuthenticationError) as err:
        await connect_with_key(store, "shop", "pk_" + "N0tAKey" * 5, base_url=server.base_url)
    assert "N0tAKey" not in str(err.value)
    assert store.list() == []


@pytest.mark.anyio
async def test_a_scoped_key_gets_a_capability_report_naming_missing_scopes(
    server: EmulatorServer, store: ConnectionStore
) -> None:
    granted = ["accounts:read", "profiles:read", "events:read", "data-privacy:write"]
    key = mint_key(server, granted)
    result = await connect_with_key(store, "narrow", key, base_url=server.base_url)
    report = result.report
    by_cap = {status.capability: status for status in report.capabilities}
    assert set(report.granted) == set(granted)
    assert result.record.capabilities == ("connect", "privacy-delete", "analytics")
    assert by_cap["privacy-access"].missing == ("lists:read", "segments:read")
    expected_sync_missing = set(plan_scopes(["sync"]).scopes) - set(granted)
    assert set(by_cap["sync"].missing) == expected_sync_missing
    assert by_cap["templates"].missing == ("templates:read", "templates:write")
    assert not any(status.unknown for status in report.capabilities)


@pytest.mark.anyio
async def test_a_403_names_the_missing_scope_and_the_capability(
    server: EmulatorServer, store: ConnectionStore
) -> None:
    key = mint_key(server, ["accounts:read", "profiles:read"])
    await connect_with_key(store, "narrow", key, base_url=server.base_url, capabilities=["connect"])
    async with open_credentials("narrow", store=store).client() as client:
        with pytest.raises(PermissionDeniedError) as denied:
            await client.get_document(
                "get_campaigns", params={"filter": "equals(messages.channel,'email')"}
            )
    text = explain_permission_error(denied.value)
    assert "campaigns:read" in text
    # the capabilities whose workflows call get_campaigns (publishing reads one by id)
    assert "sync / actions:campaigns" in text
    assert "profiles:read" not in text


@pytest.mark.anyio
async def test_check_connection_records_what_the_key_serves_now(
    server: EmulatorServer, store: ConnectionStore
) -> None:
    key = mint_key(server, plan_scopes(["connect", "flows"]).scopes)
    await connect_with_key(store, "ops", key, base_url=server.base_url, capabilities=["connect"])
    report = await check_connection(store, "ops", capabilities=["flows", "templates"])
    assert report.served == ("flows",)
    # a partial probe updates what it looked at and keeps the rest
    assert store.get("ops").capabilities == ("connect", "flows")
    assert "flows:write" in store.get("ops").scopes
    assert "accounts:read" in store.get("ops").scopes


@pytest.mark.anyio
async def test_disconnect_forgets_the_key(server: EmulatorServer, store: ConnectionStore) -> None:
    await connect_with_key(
        store, "shop", server.api_key, base_url=server.base_url, capabilities=["connect"]
    )
    record = await disconnect(store, "shop")
    assert record.name == "shop"
    with pytest.raises(ConnectionNotFoundError):
        open_credentials("shop", store=store)
    blobs = b"".join(p.read_bytes() for p in store.path.parent.iterdir() if p.suffix != ".key")
    assert server.api_key.encode() not in blobs
