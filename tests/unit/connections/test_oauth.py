"""OAuth pieces against a scripted token endpoint (httpx.MockTransport) and a ManualClock."""

from __future__ import annotations

import asyncio
import base64
import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from kbridge.connections import (
    InMemoryTokenStorage,
    LoopbackReceiver,
    OAuthClient,
    OAuthDeniedError,
    OAuthError,
    OAuthSession,
    OAuthStateMismatchError,
    OAuthTokenError,
    Pkce,
    TokenSet,
    authorize_url,
    check_callback,
    exchange_code,
    new_state,
)
from kbridge.core import ManualClock

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CLIENT = OAuthClient.at("http://auth.test", "client-1", "secret-1")


class TokenServer:
    """A minimal RFC 6749 token/revoke endpoint that rotates refresh tokens; it has
    issued ``refresh-0`` already (the tokens :func:`_held` returns)."""

    def __init__(self, *, rotate: bool = True) -> None:
        self.rotate = rotate
        self.issued = 0
        self.live_refresh: set[str] = {"refresh-0"}
        self.revoked: list[str] = []
        self.forms: list[dict[str, str]] = []
        self.challenge: str | None = None

    def handler(self, request: httpx.Request) -> httpx.Response:
        expected = "Basic " + base64.b64encode(b"client-1:secret-1").decode()
        if request.headers.get("authorization") != expected:
            return httpx.Response(401, json={"error": "invalid_client"})
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        self.forms.append(form)
        if request.url.path == "/oauth/revoke":
            self.revoked.append(form["token"])
            self.live_refresh.discard(form["token"])
            return httpx.Response(200)
        if form["grant_type"] == "authorization_code":
            if Pkce.challenge_for(form["code_verifier"]) != self.challenge:
                return httpx.Response(400, json={"error": "invalid_grant"})
            return self._issue()
        if form["refresh_token"] not in self.live_refresh:
            return httpx.Response(
                400, json={"error": "invalid_grant", "error_description": "refresh token revoked"}
            )
        if self.rotate:
            self.live_refresh.discard(form["refresh_token"])
        return self._issue(new_refresh=self.rotate)

    def _issue(self, *, new_refresh: bool = True) -> httpx.Response:
        self.issued += 1
        body: dict[str, object] = {
            "access_token": f"access-{self.issued}",
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": "profiles:read accounts:read",
        }
        if new_refresh:
            refresh = f"refresh-{self.issued}"
            self.live_refresh.add(refresh)
            body["refresh_token"] = refresh
        return httpx.Response(200, json=body)


def _http(server: TokenServer) -> httpx.AsyncClient:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0)  # a real round trip lets other tasks run meanwhile
        return server.handler(request)

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def test_pkce_matches_the_rfc_7636_example_and_fresh_pairs_are_valid() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert Pkce.challenge_for(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    pair = Pkce.generate()
    assert 43 <= len(pair.verifier) <= 128
    assert pair.challenge == Pkce.challenge_for(pair.verifier)
    assert pair.verifier not in repr(pair)
    assert Pkce.generate().verifier != pair.verifier
    assert new_state() != new_state()


def test_authorize_url_carries_pkce_state_and_space_separated_scopes() -> None:
    pkce = Pkce.generate()
    url = authorize_url(CLIENT, "http://127.0.0.1:5/callback", ("a:read", "b:write"), "st", pkce)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "http://auth.test/oauth/authorize"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query == {
        "response_type": "code",
        "client_id": "client-1",
        "redirect_uri": "http://127.0.0.1:5/callback",
        "scope": "a:read b:write",
        "state": "st",
        "code_challenge_method": "S256",
        "code_challenge": pkce.challenge,
    }
    assert "secret-1" not in url


def test_callback_checks_state_before_anything_else() -> None:
    assert check_callback({"code": "c", "state": "s"}, "s") == "c"
    with pytest.raises(OAuthStateMismatchError, match="nothing was saved"):
        check_callback({"code": "c", "state": "other"}, "s")
    with pytest.raises(OAuthStateMismatchError):
        check_callback({"code": "c"}, "s")
    with pytest.raises(OAuthStateMismatchError):  # someone else's error redirect is not ours
        check_callback({"error": "access_denied", "state": "other"}, "s")
    with pytest.raises(OAuthDeniedError, match="consent was denied") as denied:
        check_callback({"error": "access_denied", "state": "s"}, "s")
    assert denied.value.error == "access_denied"
    with pytest.raises(OAuthDeniedError, match="invalid_scope: bad scope"):
        check_callback(
            {"error": "invalid_scope", "error_description": "bad scope", "state": "s"}, "s"
        )
    with pytest.raises(OAuthError, match="no code"):
        check_callback({"state": "s"}, "s")


def test_loopback_receiver_catches_one_redirect_on_127_0_0_1() -> None:
    with LoopbackReceiver() as receiver:
        assert receiver.redirect_uri.startswith("http://127.0.0.1:")
        assert (
            httpx.get(receiver.redirect_uri.replace("/callback", "/favicon.ico")).status_code == 404
        )
        reply = httpx.get(receiver.redirect_uri, params={"code": "abc", "state": "s1"})
        assert reply.status_code == 200
        assert "close this tab" in reply.text
        assert receiver.wait_for_code("s1", 1.0) == "abc"


def test_loopback_receiver_ignores_redirects_for_another_state_and_keeps_waiting() -> None:
    with LoopbackReceiver(state="s1") as receiver:
        for params in ({"code": "x", "state": "s0"}, {"code": "x"}, {"error": "access_denied"}):
            jam = httpx.get(receiver.redirect_uri, params=params)
            assert jam.status_code == 400
            assert "not the sign-in kbridge is waiting for" in jam.text
        with pytest.raises(OAuthError, match="no authorization redirect"):
            receiver.wait(0.01)
        assert httpx.get(receiver.redirect_uri, params={"code": "c", "state": "s1"}).is_success
        assert receiver.wait_for_code("s1", 1.0) == "c"


def test_loopback_receiver_times_out_clearly() -> None:
    with (
        LoopbackReceiver() as receiver,
        pytest.raises(OAuthError, match="no authorization redirect"),
    ):
        receiver.wait(0.01)


@pytest.mark.anyio
async def test_code_exchange_sends_the_verifier_with_basic_client_auth() -> None:
    server = TokenServer()
    pkce = Pkce.generate()
    server.challenge = pkce.challenge
    async with _http(server) as http:
        tokens = await exchange_code(http, CLIENT, "code-1", pkce.verifier, "http://r", now=T0)
        assert tokens.access_token == "access-1"
        assert tokens.refresh_token == "refresh-1"
        assert tokens.expires_at == T0 + timedelta(hours=1)
        assert tokens.scopes == ("accounts:read", "profiles:read")
        assert server.forms[0]["redirect_uri"] == "http://r"
        with pytest.raises(OAuthTokenError, match="invalid_grant") as bad:
            await exchange_code(http, CLIENT, "code-1", "wrong-verifier", "http://r", now=T0)
        assert bad.value.error == "invalid_grant"
        wrong_client = OAuthClient.at("http://auth.test", "client-1", "nope")
        with pytest.raises(OAuthTokenError, match="check the client id and client secret") as err:
            await exchange_code(http, wrong_client, "c", pkce.verifier, "http://r", now=T0)
        assert "nope" not in str(err.value)


def _held() -> TokenSet:
    """The tokens a connection holds before any refresh: ``refresh-0`` is live."""
    return TokenSet(access_token="a0", refresh_token="refresh-0")


def _session(
    storage: InMemoryTokenStorage, http: httpx.AsyncClient, clock: ManualClock | None = None
) -> OAuthSession:
    return OAuthSession(CLIENT, storage, clock=clock or ManualClock(T0), http=http, margin=60)


@pytest.mark.anyio
async def test_session_refreshes_before_expiry_and_persists_the_rotated_refresh_token() -> None:
    server = TokenServer()
    clock = ManualClock(T0)
    storage = InMemoryTokenStorage(
        TokenSet(
            access_token="access-0", refresh_token="refresh-0", expires_at=T0 + timedelta(hours=1)
        )
    )
    async with _http(server) as http:
        session = _session(storage, http, clock)
        assert await session.token() == "access-0"
        clock.advance(3600 - 61)
        assert await session.token() == "access-0"  # 61 s left: still outside the margin
        clock.advance(2)
        assert await session.token() == "access-1"  # within 60 s of expiry: refreshed first
        assert storage.tokens is not None
        assert storage.tokens.refresh_token == "refresh-1"
        assert storage.saves == 1
        assert "refresh-0" not in server.live_refresh  # rotated: the old one is dead now


@pytest.mark.anyio
async def test_refresh_after_401_keeps_the_refresh_token_when_the_server_does_not_rotate() -> None:
    server = TokenServer(rotate=False)
    storage = InMemoryTokenStorage(_held())
    async with _http(server) as http:
        session = _session(storage, http)
        assert await session.refresh() == "access-1"
        assert storage.tokens is not None
        assert storage.tokens.refresh_token == "refresh-0"


@pytest.mark.anyio
async def test_concurrent_refreshes_spend_the_refresh_token_once() -> None:
    server = TokenServer()
    storage = InMemoryTokenStorage(_held())
    async with _http(server) as http:
        session = _session(storage, http)
        results = await asyncio.gather(*(session.refresh() for _ in range(5)))
    assert set(results) == {"access-1"}
    assert server.issued == 1


class FailingStorage(InMemoryTokenStorage):
    async def save(self, tokens: TokenSet) -> None:
        raise OSError("disk full")


@pytest.mark.anyio
async def test_a_token_that_could_not_be_saved_is_never_used() -> None:
    server = TokenServer()
    storage = FailingStorage(_held())
    async with _http(server) as http:
        session = _session(storage, http)
        with pytest.raises(OSError, match="disk full"):
            await session.refresh()
    assert storage.tokens is not None
    assert storage.tokens.access_token == "a0"  # the old tokens stay what is stored


@pytest.mark.anyio
async def test_revoked_refresh_token_says_to_reconnect_and_revoke_clears_storage() -> None:
    server = TokenServer()
    storage = InMemoryTokenStorage(_held())
    async with _http(server) as http:
        session = _session(storage, http)
        await session.revoke()
        assert server.revoked == ["refresh-0"]
        assert server.forms[-1]["token_type_hint"] == "refresh_token"
        assert storage.tokens is None
        stale = _session(InMemoryTokenStorage(_held()), http)
        with pytest.raises(OAuthTokenError, match="connect again with --oauth") as err:
            await stale.refresh()
    assert "refresh-0" not in str(err.value)
    assert "a0" not in repr(stale)


def test_receiver_can_be_driven_from_another_thread() -> None:
    with LoopbackReceiver() as receiver:
        thread = threading.Thread(
            target=httpx.get,
            args=(receiver.redirect_uri,),
            kwargs={"params": {"state": "x", "error": "access_denied"}},
        )
        thread.start()
        with pytest.raises(OAuthDeniedError):
            receiver.wait_for_code("x", 5.0)
        thread.join()


@pytest.mark.anyio
async def test_tokens_refreshed_by_another_process_are_adopted_not_refreshed_again() -> None:
    server = TokenServer()
    shared = InMemoryTokenStorage(_held())
    async with _http(server) as http:
        one = _session(shared, http)
        two = _session(shared, http)
        assert await two.token() == "a0"  # both hold a0 / refresh-0
        assert await one.refresh() == "access-1"  # rotates refresh-0 away
        assert await two.refresh() == "access-1"  # would be invalid_grant with refresh-0
    assert server.issued == 1


@pytest.mark.anyio
async def test_a_refresh_that_lost_to_an_unlocked_one_adopts_the_winners_tokens() -> None:
    # InMemoryTokenStorage has no exclusive(): like a process of an older kbridge, nothing
    # keeps the two refreshes apart, and the server rotates refresh-0 away under one of them
    server = TokenServer()
    shared = InMemoryTokenStorage(_held())
    async with _http(server) as http:
        one = _session(shared, http)
        two = _session(shared, http)
        tokens = await asyncio.gather(one.refresh(), two.refresh())
    assert tokens == ["access-1", "access-1"]
    assert server.issued == 1
    assert shared.tokens is not None
    assert shared.tokens.refresh_token == "refresh-1"
