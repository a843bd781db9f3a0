"""The OAuth authority's rules without HTTP: codes, grants, rotation, revocation, expiry."""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import pytest

from kbridge.core import ManualClock
from kbridge.emulator.http.auth import InMemoryTokenStore
from kbridge.emulator.oauth import (
    AuthorizeError,
    OAuthAuthority,
    OAuthClient,
    OAuthError,
    s256_challenge,
)
from kbridge.emulator.simclock import SimClock

pytestmark = pytest.mark.unit

START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
REDIRECT = "https://app.example/callback"


def make(
    *, access_token_ttl: float = 3600.0, refresh_token_ttl: float | None = None
) -> tuple[OAuthAuthority, InMemoryTokenStore, SimClock, OAuthClient]:
    clock = SimClock(ManualClock(START))
    tokens = InMemoryTokenStore()
    authority = OAuthAuthority(
        clock=clock,
        tokens=tokens,
        account_id=lambda: "AbC123",
        access_token_ttl=access_token_ttl,
        refresh_token_ttl=refresh_token_ttl,
    )
    return authority, tokens, clock, authority.register_client([REDIRECT])


def params(client: OAuthClient, verifier: str, **overrides: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": REDIRECT,
        "scope": "lists:read profiles:read",
        "state": "s",
        "code_challenge_method": "S256",
        "code_challenge": s256_challenge(verifier),
        **overrides,
    }


def grant(authority: OAuthAuthority, client: OAuthClient) -> dict[str, object]:
    verifier = secrets.token_urlsafe(40)
    code = authority.issue_code(authority.check_authorization(params(client, verifier)))
    return authority.exchange_code(client, code=code, code_verifier=verifier, redirect_uri=REDIRECT)


def test_s256_is_unpadded_base64url_of_the_sha256() -> None:
    verifier = "a" * 43 + "-._~"
    digest = hashlib.sha256(verifier.encode()).digest()
    expected = base64.b64encode(digest).decode().replace("+", "-").replace("/", "_").rstrip("=")
    challenge = s256_challenge(verifier)
    assert challenge == expected
    assert len(challenge) == 43


def test_tokens_carry_scopes_expiry_and_the_installation_bucket() -> None:
    authority, tokens, _, client = make(access_token_ttl=120.0)
    response = grant(authority, client)
    assert response["expires_in"] == 120
    looked_up = tokens.lookup(str(response["access_token"]))
    assert looked_up is not None
    assert looked_up.scopes == {"lists:read", "profiles:read"}
    assert looked_up.expires_at == START + timedelta(seconds=120)
    assert looked_up.installation_id == f"oauth:AbC123:{client.client_id}"


def test_a_refresh_may_narrow_but_never_widen_the_scopes() -> None:
    authority, tokens, _, client = make()
    first = grant(authority, client)
    narrowed = authority.refresh(
        client, refresh_token=str(first["refresh_token"]), scope="lists:read"
    )
    assert narrowed["scope"] == "lists:read"
    looked_up = tokens.lookup(str(narrowed["access_token"]))
    assert looked_up is not None
    assert looked_up.scopes == {"lists:read"}
    with pytest.raises(OAuthError) as caught:
        authority.refresh(
            client, refresh_token=str(narrowed["refresh_token"]), scope="lists:read lists:write"
        )
    assert caught.value.error == "invalid_scope"
    assert "lists:write" in caught.value.description


def test_refresh_tokens_expire_and_rotation_extends_them() -> None:
    authority, _, clock, client = make(refresh_token_ttl=1000.0)
    first = grant(authority, client)
    clock.advance(900)
    second = authority.refresh(client, refresh_token=str(first["refresh_token"]), scope=None)
    clock.advance(900)
    third = authority.refresh(client, refresh_token=str(second["refresh_token"]), scope=None)
    clock.advance(1001)
    with pytest.raises(OAuthError) as caught:
        authority.refresh(client, refresh_token=str(third["refresh_token"]), scope=None)
    assert (caught.value.error, caught.value.status) == ("invalid_grant", 400)
    assert "expired" in caught.value.description


def test_another_clients_code_refresh_token_and_revocation_are_refused() -> None:
    authority, tokens, _, client = make()
    other = authority.register_client([REDIRECT])
    verifier = secrets.token_urlsafe(40)
    code = authority.issue_code(authority.check_authorization(params(client, verifier)))
    with pytest.raises(OAuthError, match="invalid_grant"):
        authority.exchange_code(other, code=code, code_verifier=verifier, redirect_uri=REDIRECT)
    response = authority.exchange_code(
        client, code=code, code_verifier=verifier, redirect_uri=REDIRECT
    )
    with pytest.raises(OAuthError, match="invalid_grant"):
        authority.refresh(other, refresh_token=str(response["refresh_token"]), scope=None)
    with pytest.raises(OAuthError, match="invalid_request"):
        authority.revoke(other, str(response["refresh_token"]))
    assert tokens.lookup(str(response["access_token"])) is not None


def test_client_authentication_is_exact() -> None:
    authority, _, _, client = make()
    assert authority.authenticate_client(client.client_id, client.client_secret) == client
    for client_id, secret in (
        (client.client_id, client.client_secret + "x"),
        ("unknown", client.client_secret),
        (client.client_id, None),
        (None, client.client_secret),
    ):
        with pytest.raises(OAuthError) as caught:
            authority.authenticate_client(client_id, secret)
        assert (caught.value.error, caught.value.status) == ("invalid_client", 401)


def test_authorize_checks_client_and_redirect_before_anything_redirectable() -> None:
    authority, _, _, client = make()
    verifier = secrets.token_urlsafe(40)
    cases = [
        ({"client_id": "nope", "code_challenge_method": "plain"}, False),
        ({"redirect_uri": REDIRECT + "?x=1", "scope": ""}, False),
        ({"redirect_uri": ""}, False),
        ({"code_challenge_method": "plain"}, True),
    ]
    for overrides, redirectable in cases:
        with pytest.raises(AuthorizeError) as caught:
            authority.check_authorization(params(client, verifier, **overrides))
        assert caught.value.redirectable is redirectable, overrides


def test_registration_rejects_bad_redirect_uris() -> None:
    authority, *_ = make()
    for uris in ([], "https://x/cb", ["relative/cb"], ["https:///nohost"], ["https://x/cb#frag"]):
        with pytest.raises(ValueError, match="redirect"):
            authority.register_client(uris)  # type: ignore[arg-type]
    twice = authority.register_client(["https://x/cb", "https://x/cb"])
    assert twice.redirect_uris == ("https://x/cb",)


def test_secrets_stay_out_of_reprs_and_error_text() -> None:
    authority, _, _, client = make()
    response = grant(authority, client)
    assert client.client_secret not in repr(client)
    assert client.client_secret not in repr(authority)
    with pytest.raises(OAuthError) as caught:
        authority.refresh(
            client, refresh_token="bogus-" + str(response["refresh_token"]), scope=None
        )
    assert str(response["refresh_token"]) not in str(caught.value)
