"""The full OAuth flow against the emulator's authorization server, driven programmatically:
authorize (302) → our loopback redirect server → code exchange → saved, encrypted tokens;
then refresh on 401 and before expiry, rotation persisted, revoke on disconnect, failures."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sqlite3
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from kbridge.connections import (
    ConnectionStore,
    ConnectionTamperedError,
    OAuthClient,
    OAuthDeniedError,
    OAuthError,
    OAuthTokenError,
    TokenSet,
    connect_with_oauth,
    disconnect,
    open_credentials,
    plan_scopes,
    refresh_grant,
)
from kbridge.core import ManualClock, SystemClock
from kbridge.emulator import EmulatorConfig, EmulatorServer

pytestmark = pytest.mark.integration

CONFIG = EmulatorConfig(seed=11, profiles=50, events=100, rate_limit_factor=None)
CAPS = ("connect", "privacy-delete")
#: what the failing flows ask for: they stop before a scope matters
ONE_SCOPE = ("accounts:read",)


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(CONFIG) as running:
        yield running


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def register(server: EmulatorServer, port: int) -> OAuthClient:
    reply = httpx.post(
        f"{server.base_url}/_emulator/oauth-clients",
        json={"redirect_uris": [f"http://127.0.0.1:{port}/callback"]},
    )
    reply.raise_for_status()
    body = reply.json()
    return OAuthClient.at(server.base_url, body["client_id"], body["client_secret"])


def follow(url: str) -> None:
    """What a browser does: open the authorize URL, follow the 302 to the loopback server."""
    reply = httpx.get(url, follow_redirects=True, timeout=10.0)
    assert reply.status_code == 200, reply.text


async def connect(
    server: EmulatorServer,
    store: ConnectionStore,
    name: str = "app",
    *,
    client_secret: str | None = None,
    **options: Any,
) -> OAuthClient:
    """Connect ``name`` with a newly registered app, as a user who follows the consent page
    would; ``options`` replace connect_with_oauth's (CAPS and its scopes, ``follow``, 10 s),
    ``client_secret`` the app's."""
    port = free_port()
    client = register(server, port)
    if client_secret is not None:
        client = OAuthClient.at(server.base_url, client.client_id, client_secret)
    settings: dict[str, Any] = {
        "scopes": plan_scopes(CAPS).scopes,
        "open_url": follow,
        "base_url": server.base_url,
        "capabilities": CAPS,
        "redirect_port": port,
        "redirect_wait": 10.0,
    }
    await connect_with_oauth(store, name, client, **(settings | options))
    return client


@pytest.mark.anyio
async def test_full_flow_saves_encrypted_tokens_that_work(
    server: EmulatorServer, store: ConnectionStore
) -> None:
    client = await connect(server, store)
    record = store.get("app")
    assert record.kind == "oauth"
    assert record.oauth is not None
    assert record.oauth.client_id == client.client_id
    assert set(record.scopes) == set(plan_scopes(CAPS).scopes)
    assert record.capabilities == CAPS
    secrets = store.secrets("app")
    raw = b"".join(p.read_bytes() for p in store.path.parent.iterdir() if p.suffix != ".key")
    for value in (secrets["access_token"], secrets["refresh_token"], client.client_secret):
        assert value
        assert value.encode() not in raw
    async with open_credentials("app", store=store).client() as api:
        page = await api.get_document("get_profiles", params={"page[size]": 3})
    assert len(page.resources) == 3


@pytest.mark.anyio
async def test_an_expired_token_is_refreshed_once_on_401_and_the_rotation_is_saved(
    server: EmulatorServer, store: ConnectionStore
) -> None:
    await connect(server, store)
    before = store.secrets("app")
    # The emulator's clock moves past the token's life; ours does not, so only the 401 tells.
    async with httpx.AsyncClient() as http:
        moved = await http.post(
            f"{server.base_url}/_emulator/clock", json={"advance_seconds": 3700}
        )
    moved.raise_for_status()
    async with open_credentials("app", store=store).client() as api:
        page = await api.get_document("get_profiles", params={"page[size]": 2})
    assert len(page.resources) == 2
    after = store.secrets("app")
    assert after["access_token"] != before["access_token"]
    assert after["refresh_token"] != before["refresh_token"]  # rotated and persisted


@pytest.mark.anyio
async def test_a_token_about_to_expire_is_refreshed_before_use(
    server: EmulatorServer, store: ConnectionStore
) -> None:
    await connect(server, store)
    before = store.secrets("app")
    later = ManualClock(SystemClock().now() + timedelta(seconds=3600 - 30))
    provider = open_credentials("app", store=store, clock=later).token_provider
    assert provider is not None
    token = await provider.token()
    assert token != before["access_token"]
    assert store.secrets("app")["access_token"] == token


@pytest.mark.anyio
async def test_disconnect_revokes_the_grant_and_forgets_it(
    server: EmulatorServer, store: ConnectionStore
) -> None:
    client = await connect(server, store)
    refresh = store.secrets("app")["refresh_token"]
    await disconnect(store, "app")
    assert store.list() == []
    async with httpx.AsyncClient() as http:
        with pytest.raises(OAuthTokenError, match="invalid_grant"):
            await refresh_grant(
                http,
                client,
                TokenSet(access_token="x", refresh_token=refresh),
                now=SystemClock().now(),
            )


@pytest.mark.anyio
async def test_a_forged_callback_is_refused_and_the_real_redirect_still_connects(
    server: EmulatorServer, store: ConnectionStore
) -> None:
    answers: list[httpx.Response] = []

    def jam_then_follow(url: str) -> None:
        redirect = parse_qs(urlsplit(url).query)["redirect_uri"][0]
        answers.append(httpx.get(redirect, params={"code": "stolen", "state": "not-ours"}))
        answers.append(httpx.get(redirect))  # no state at all
        follow(url)

    await connect(server, store, open_url=jam_then_follow)
    assert [reply.status_code for reply in answers] == [400, 400]
    assert store.get("app").kind == "oauth"


@pytest.mark.anyio
async def test_only_forged_callbacks_time_out_and_save_nothing(
    server: EmulatorServer, store: ConnectionStore
) -> None:
    def forged(url: str) -> None:
        redirect = parse_qs(urlsplit(url).query)["redirect_uri"][0]
        httpx.get(redirect, params={"code": "stolen", "state": "not-ours"})

    with pytest.raises(OAuthError, match="no authorization redirect"):
        await connect(server, store, scopes=ONE_SCOPE, open_url=forged, redirect_wait=0.5)
    assert store.list() == []


@pytest.mark.anyio
async def test_denied_consent_aborts_with_a_clear_message(store: ConnectionStore) -> None:
    config = EmulatorConfig(
        seed=12, profiles=10, events=10, rate_limit_factor=None, oauth_consent="deny"
    )
    with (
        EmulatorServer(config) as denying,
        pytest.raises(OAuthDeniedError, match="consent was denied"),
    ):
        await connect(denying, store, scopes=ONE_SCOPE)
    assert store.list() == []


@pytest.mark.anyio
async def test_wrong_client_secret_fails_the_exchange(
    server: EmulatorServer, store: ConnectionStore
) -> None:
    with pytest.raises(OAuthError, match="client id and client secret") as err:
        await connect(server, store, scopes=ONE_SCOPE, client_secret="wrong-secret")
    assert "wrong-secret" not in str(err.value)
    assert store.list() == []


@pytest.mark.anyio
async def test_reauthorising_keeps_the_connection_and_revokes_the_replaced_grant(
    server: EmulatorServer, store: ConnectionStore
) -> None:
    client = await connect(server, store)
    first = store.get("app")
    old_refresh = store.secrets("app")["refresh_token"]
    await connect(server, store)
    again = store.get("app")
    assert again.id == first.id
    assert again.rotated_at is not None
    async with httpx.AsyncClient() as http:
        with pytest.raises(OAuthTokenError, match="invalid_grant"):
            await refresh_grant(
                http,
                client,
                TokenSet(access_token="x", refresh_token=old_refresh),
                now=SystemClock().now(),
            )
    async with open_credentials("app", store=store).client() as api:
        assert (await api.get_document("get_accounts")).resources


@pytest.mark.anyio
async def test_a_tampered_token_endpoint_gets_no_token_and_force_forgets_the_connection(
    server: EmulatorServer, store: ConnectionStore
) -> None:
    await connect(server, store)
    with contextlib.closing(sqlite3.connect(store.path)) as conn, conn:
        conn.execute("UPDATE connections SET oauth = replace(oauth, '/oauth/token', '/x/token')")
    with pytest.raises(ConnectionTamperedError, match="changed outside kbridge"):
        open_credentials("app", store=store)
    with pytest.raises(ConnectionTamperedError, match="--force"):
        await disconnect(store, "app")
    await disconnect(store, "app", force=True)
    assert store.list() == []


def test_two_commands_refreshing_an_expired_grant_at_once_both_succeed(
    server: EmulatorServer, tmp_path: Path
) -> None:
    """Two commands, each with its own store instance on one file, as two processes have."""
    path = tmp_path / "connections.sqlite3"
    asyncio.run(connect(server, ConnectionStore(path)))
    failures: list[str] = []

    def command(barrier: threading.Barrier) -> None:
        credentials = open_credentials("app", store=ConnectionStore(path))

        async def use() -> None:
            async with credentials.client() as api:
                page = await api.get_document("get_profiles", params={"page[size]": 1})
                assert page.resources

        barrier.wait()
        try:
            asyncio.run(use())
        except Exception as exc:  # every failure is counted, whatever its kind
            failures.append(f"{type(exc).__name__}: {exc}")

    rounds = 16
    for _ in range(rounds):
        # the emulator's clock passes the access token's life: both commands meet a 401
        httpx.post(
            f"{server.base_url}/_emulator/clock", json={"advance_seconds": 3700}
        ).raise_for_status()
        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=command, args=(barrier,)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert failures == []

    # the grant is still alive: the stored refresh token is the live one
    async def still_works() -> None:
        async with open_credentials("app", store=ConnectionStore(path)).client() as api:
            page = await api.get_document("get_profiles", params={"page[size]": 1})
            assert page.resources

    asyncio.run(still_works())
