"""Klaviyo's official SDK (``klaviyo-api``) using an access token from the emulator's OAuth server.

The SDK's ``access_token`` mode is how an OAuth app calls Klaviyo; it must
reach the API with our tokens and see Klaviyo's documented 401/403 errors.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from klaviyo_api import KlaviyoAPI
from openapi_client.exceptions import ForbiddenException, UnauthorizedException

from kbridge.emulator import EmulatorConfig, EmulatorServer

pytestmark = pytest.mark.integration

REDIRECT = "http://localhost:8976/oauth/callback"


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    config = EmulatorConfig(seed=5, profiles=50, events=100, rate_limit_factor=None)
    with EmulatorServer(config) as running:
        yield running


def connect(http: httpx.Client, scope: str) -> tuple[dict[str, str], dict[str, str]]:
    """Register an app and run the whole flow; returns (app credentials, token response)."""
    app = http.post("/_emulator/oauth-clients", json={"redirect_uris": [REDIRECT]}).json()
    verifier = secrets.token_urlsafe(64)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    redirect = http.get(
        "/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": app["client_id"],
            "redirect_uri": REDIRECT,
            "scope": scope,
            "state": "xyz",
            "code_challenge_method": "S256",
            "code_challenge": challenge,
        },
    )
    assert redirect.status_code == 302, redirect.text
    callback = dict(parse_qsl(urlsplit(redirect.headers["location"]).query))
    token = http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": callback["code"],
            "code_verifier": verifier,
            "redirect_uri": REDIRECT,
        },
        auth=(app["client_id"], app["client_secret"]),
    )
    assert token.status_code == 200, token.text
    return app, token.json()


def sdk(server: EmulatorServer, access_token: str) -> KlaviyoAPI:
    return KlaviyoAPI(
        api_key=None,  # type: ignore[arg-type]  # the SDK takes one of api_key / access_token
        access_token=access_token,
        max_delay=1,
        max_retries=0,
        test_host=server.base_url,
    )


def test_the_official_sdk_calls_the_api_with_an_oauth_access_token(
    server: EmulatorServer,
) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10.0) as http:
        app, tokens = connect(http, "accounts:read lists:read")
        klaviyo = sdk(server, tokens["access_token"])
        accounts = klaviyo.Accounts.get_accounts()
        assert accounts.data[0].type == "account"
        assert klaviyo.Lists.get_lists().data is not None
        with pytest.raises(ForbiddenException):
            klaviyo.Profiles.get_profiles()
        revoked = http.post(
            "/oauth/revoke",
            data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
            auth=(app["client_id"], app["client_secret"]),
        )
        assert revoked.status_code == 200
        with pytest.raises(UnauthorizedException):
            klaviyo.Accounts.get_accounts()
