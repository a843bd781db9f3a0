"""The emulator's OAuth 2.0 server end to end over loopback HTTP, driven by plain httpx.

Every redirect is followed by hand, as a browser and a client's callback
handler would: the test reads ``Location`` and pulls ``code``/``state`` out.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from kbridge.catalog import REVISION
from kbridge.emulator import EmulatorConfig, EmulatorServer
from kbridge.emulator.config import OAuthConsent

pytestmark = pytest.mark.integration

REDIRECT = "http://127.0.0.1:8976/callback"
SCOPES = "accounts:read lists:read"


@dataclass(frozen=True)
class App:
    client_id: str
    client_secret: str

    def basic(self, secret: str | None = None) -> dict[str, str]:
        raw = f"{self.client_id}:{secret if secret is not None else self.client_secret}"
        return {"Authorization": "Basic " + base64.b64encode(raw.encode()).decode()}


def challenge_of(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def new_verifier() -> str:
    return secrets.token_urlsafe(48)[:64]


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    config = EmulatorConfig(profiles=50, events=100, rate_limit_factor=None)
    with EmulatorServer(config) as running:
        yield running


@pytest.fixture
def http(server: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
        yield client


def register(http: httpx.Client, *uris: str) -> App:
    response = http.post(
        "/_emulator/oauth-clients", json={"redirect_uris": list(uris or [REDIRECT])}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return App(body["client_id"], body["client_secret"])


def authorize(
    http: httpx.Client,
    app: App,
    verifier: str,
    *,
    scope: str = SCOPES,
    redirect_uri: str = REDIRECT,
    **overrides: str,
) -> httpx.Response:
    params = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": "st-123",
        "code_challenge_method": "S256",
        "code_challenge": challenge_of(verifier),
        **overrides,
    }
    return http.get("/oauth/authorize", params=params)


def callback_params(response: httpx.Response, redirect_uri: str = REDIRECT) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(redirect_uri + "?")
    return dict(parse_qsl(urlsplit(location).query))


def code_for(http: httpx.Client, app: App, verifier: str, **kwargs: str) -> str:
    params = callback_params(authorize(http, app, verifier, **kwargs))
    assert params["state"] == "st-123"
    return params["code"]


def exchange(
    http: httpx.Client, app: App, code: str, verifier: str, redirect_uri: str = REDIRECT
) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": redirect_uri,
    }
    return http.post("/oauth/token", data=form, headers=app.basic())


def refresh(http: httpx.Client, app: App, refresh_token: str) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return http.post("/oauth/token", data=form, headers=app.basic())


def tokens_for(http: httpx.Client, app: App, scope: str = SCOPES) -> dict[str, object]:
    verifier = new_verifier()
    response = exchange(http, app, code_for(http, app, verifier, scope=scope), verifier)
    assert response.status_code == 200, response.text
    return dict(response.json())


def api(http: httpx.Client, path: str, access_token: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {access_token}", "revision": REVISION}
    return http.get(path, headers=headers)


def oauth_error(response: httpx.Response, status: int, error: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == error
    assert isinstance(body["error_description"], str)
    return str(body["error_description"])


def api_error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    (error,) = response.json()["errors"]
    assert error["code"] == code
    return str(error["detail"])


def test_full_flow_issues_bearer_tokens_that_reach_the_api(http: httpx.Client) -> None:
    app = register(http)
    verifier = new_verifier()
    code = code_for(http, app, verifier)
    response = exchange(http, app, code, verifier)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == SCOPES
    assert api(http, "/api/accounts", body["access_token"]).status_code == 200
    assert api(http, "/api/lists", body["access_token"]).status_code == 200


def test_granted_scopes_are_enforced_like_a_keys(http: httpx.Client) -> None:
    tokens = tokens_for(http, register(http), scope="accounts:read")
    assert api(http, "/api/accounts", tokens["access_token"]).status_code == 200
    detail = api_error(api(http, "/api/lists", tokens["access_token"]), 403, "permission_denied")
    assert "lists:read" in detail


def test_refresh_rotates_and_a_rotated_token_is_refused(http: httpx.Client) -> None:
    app = register(http)
    first = tokens_for(http, app)
    rotated = refresh(http, app, str(first["refresh_token"]))
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["scope"] == SCOPES
    assert api(http, "/api/accounts", second["access_token"]).status_code == 200
    reuse = refresh(http, app, str(first["refresh_token"]))
    assert "rotated" in oauth_error(reuse, 400, "invalid_grant")
    assert refresh(http, app, second["refresh_token"]).status_code == 200


def test_access_tokens_expire_on_the_simulated_clock(http: httpx.Client) -> None:
    app = register(http)
    tokens = tokens_for(http, app)
    assert http.post("/_emulator/clock", json={"advance_seconds": 3599}).status_code == 200
    assert api(http, "/api/accounts", tokens["access_token"]).status_code == 200
    http.post("/_emulator/clock", json={"advance_seconds": 2})
    detail = api_error(api(http, "/api/accounts", tokens["access_token"]), 401, "not_authenticated")
    assert "expired" in detail
    renewed = refresh(http, app, str(tokens["refresh_token"]))
    assert renewed.status_code == 200
    assert api(http, "/api/accounts", renewed.json()["access_token"]).status_code == 200


def test_revoking_a_refresh_token_kills_its_access_tokens(http: httpx.Client) -> None:
    app = register(http)
    tokens = tokens_for(http, app)
    form = {"token": tokens["refresh_token"], "token_type_hint": "refresh_token"}
    assert http.post("/oauth/revoke", data=form, headers=app.basic()).status_code == 200
    api_error(api(http, "/api/accounts", tokens["access_token"]), 401, "not_authenticated")
    oauth_error(refresh(http, app, str(tokens["refresh_token"])), 400, "invalid_grant")


def test_revoking_an_access_token_leaves_the_refresh_token(http: httpx.Client) -> None:
    app = register(http)
    tokens = tokens_for(http, app)
    form = {"token": tokens["access_token"], "token_type_hint": "access_token"}
    assert http.post("/oauth/revoke", data=form, headers=app.basic()).status_code == 200
    api_error(api(http, "/api/accounts", tokens["access_token"]), 401, "not_authenticated")
    assert refresh(http, app, str(tokens["refresh_token"])).status_code == 200
    unknown = {"token": "no-such-token"}
    assert http.post("/oauth/revoke", data=unknown, headers=app.basic()).status_code == 200


def test_wrong_verifier_fails_and_burns_the_code(http: httpx.Client) -> None:
    app = register(http)
    verifier = new_verifier()
    code = code_for(http, app, verifier)
    wrong = exchange(http, app, code, new_verifier())
    assert oauth_error(wrong, 400, "invalid_grant") == "Code challenge failed."
    oauth_error(exchange(http, app, code, verifier), 400, "invalid_grant")


def test_malformed_verifier_is_an_invalid_request(http: httpx.Client) -> None:
    app = register(http)
    verifier = new_verifier()
    code = code_for(http, app, verifier)
    detail = oauth_error(exchange(http, app, code, "too-short"), 400, "invalid_request")
    assert "code_verifier" in detail
    assert exchange(http, app, code, verifier).status_code == 200


def test_reused_code_is_refused_and_revokes_what_it_granted(http: httpx.Client) -> None:
    app = register(http)
    verifier = new_verifier()
    code = code_for(http, app, verifier)
    first = exchange(http, app, code, verifier)
    assert first.status_code == 200
    detail = oauth_error(exchange(http, app, code, verifier), 400, "invalid_grant")
    assert "already used" in detail
    api_error(api(http, "/api/accounts", first.json()["access_token"]), 401, "not_authenticated")


def test_code_expires_after_ten_simulated_minutes(http: httpx.Client) -> None:
    app = register(http)
    verifier = new_verifier()
    code = code_for(http, app, verifier)
    http.post("/_emulator/clock", json={"advance_seconds": 601})
    assert "expired" in oauth_error(exchange(http, app, code, verifier), 400, "invalid_grant")


def test_token_redirect_uri_must_match_exactly(http: httpx.Client) -> None:
    other = "http://127.0.0.1:8976/other"
    app = register(http, REDIRECT, other)
    verifier = new_verifier()
    code = code_for(http, app, verifier)
    oauth_error(exchange(http, app, code, verifier, redirect_uri=other), 400, "invalid_grant")
    oauth_error(
        exchange(http, app, code, verifier, redirect_uri=REDIRECT + "/"), 400, "invalid_grant"
    )
    assert exchange(http, app, code, verifier).status_code == 200


def test_bad_client_credentials_are_invalid_client(http: httpx.Client) -> None:
    app = register(http)
    verifier = new_verifier()
    code = code_for(http, app, verifier)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": REDIRECT,
    }
    wrong = http.post("/oauth/token", data=form, headers=app.basic("not-the-secret"))
    oauth_error(wrong, 401, "invalid_client")
    assert wrong.headers["www-authenticate"].startswith("Basic")
    oauth_error(http.post("/oauth/token", data=form), 401, "invalid_client")
    garbled = http.post("/oauth/token", data=form, headers={"Authorization": "Basic %%%"})
    oauth_error(garbled, 401, "invalid_client")
    as_form = {**form, "client_id": app.client_id, "client_secret": app.client_secret}
    assert http.post("/oauth/token", data=as_form).status_code == 200


def test_token_endpoint_refuses_json_bodies_and_unknown_grants(http: httpx.Client) -> None:
    app = register(http)
    as_json = http.post("/oauth/token", json={"grant_type": "refresh_token"}, headers=app.basic())
    assert "form-encoded" in oauth_error(as_json, 400, "invalid_request")
    password = http.post("/oauth/token", data={"grant_type": "password"}, headers=app.basic())
    oauth_error(password, 400, "unsupported_grant_type")
    missing = http.post("/oauth/token", data={}, headers=app.basic())
    oauth_error(missing, 400, "invalid_request")


def test_authorize_errors_that_cannot_redirect_are_a_400(http: httpx.Client) -> None:
    app = register(http)
    verifier = new_verifier()
    unknown = authorize(http, App("no-such-client", "x"), verifier)
    oauth_error(unknown, 400, "invalid_client")
    bad_redirect = authorize(http, app, verifier, redirect_uri="http://evil.example/cb")
    assert "redirect_uri" in oauth_error(bad_redirect, 400, "invalid_request")


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": ""}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "accounts:read unicorns:ride"}, "invalid_scope"),
        ({"scope": ""}, "invalid_scope"),
    ],
)
def test_authorize_errors_go_back_to_the_client_with_state(
    http: httpx.Client, overrides: dict[str, str], error: str
) -> None:
    app = register(http)
    params = callback_params(authorize(http, app, new_verifier(), **overrides))
    assert params["error"] == error
    assert params["state"] == "st-123"
    assert params["error_description"]
    assert "code" not in params


def test_registering_a_client_validates_redirect_uris(http: httpx.Client) -> None:
    for body in ({}, {"redirect_uris": []}, {"redirect_uris": ["/relative"]}):
        response = http.post("/_emulator/oauth-clients", json=body)
        assert response.status_code == 400, body
        assert "redirect" in response.json()["error"].lower()


def test_bearer_tokens_draw_on_the_installations_own_rate_limit_bucket(
    server: EmulatorServer, http: httpx.Client
) -> None:
    app = register(http)
    tokens = tokens_for(http, app)
    grant = server.state.tokens.lookup(str(tokens["access_token"]))
    assert grant is not None
    assert grant.installation_id == f"oauth:{server.state.backend.account_id}:{app.client_id}"
    assert grant.scopes == frozenset(SCOPES.split())


def consent_server(mode: OAuthConsent) -> EmulatorServer:
    config = EmulatorConfig(profiles=0, events=0, rate_limit_factor=None, oauth_consent=mode)
    return EmulatorServer(config)


def test_consent_page_posts_the_decision_back() -> None:
    with consent_server("page") as running, httpx.Client(base_url=running.base_url) as http:
        app = register(http)
        verifier = new_verifier()
        page = authorize(http, app, verifier)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert 'action="/oauth/authorize"' in page.text
        assert "lists:read" in page.text
        form = dict(parse_qsl(urlsplit(str(page.request.url)).query))
        approved = callback_params(
            http.post("/oauth/authorize", data={**form, "decision": "approve"})
        )
        assert exchange(http, app, approved["code"], verifier).status_code == 200
        denied = callback_params(http.post("/oauth/authorize", data={**form, "decision": "deny"}))
        assert denied["error"] == "access_denied"
        assert denied["state"] == "st-123"


def test_deny_mode_redirects_with_access_denied() -> None:
    with consent_server("deny") as running, httpx.Client(base_url=running.base_url) as http:
        app = register(http)
        params = callback_params(authorize(http, app, new_verifier()))
    assert params == {
        "error": "access_denied",
        "error_description": "The user denied the authorization request.",
        "state": "st-123",
    }
