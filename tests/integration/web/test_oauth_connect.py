"""OAuth connect through the API against the emulator's authorization server: start gives the
authorize URL (PKCE S256, state); the browser's redirect to the callback stores the connection."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from kbridge.connections import Pkce
from kbridge.service.connection_store import SqlConnectionStore
from tests.integration.web.conftest import Api

pytestmark = pytest.mark.integration

CALLBACK = "/api/v1/connections/oauth/callback"


def register(api: Api) -> dict[str, Any]:
    reply = httpx.post(
        f"{api.emulator.base_url}/_emulator/oauth-clients",
        json={"redirect_uris": [api.base_url + CALLBACK]},
    )
    reply.raise_for_status()
    app: dict[str, Any] = reply.json()
    return app


def start(api: Api, client: httpx.Client, name: str = "app", **extra: Any) -> httpx.Response:
    app = register(api)
    body = {
        "name": name,
        "client_id": app["client_id"],
        "client_secret": app["client_secret"],
        "base_url": api.emulator.base_url,
        "capabilities": ["privacy-delete"],
        **extra,
    }
    return client.post("/api/v1/connections/oauth/start", json=body)


def consent(authorize_url: str) -> httpx.Response:
    """What the browser does: open the authorize URL; the 302 names our callback."""
    reply = httpx.get(authorize_url, follow_redirects=False, timeout=10.0)
    assert reply.status_code in (302, 303), reply.text
    return reply


def test_start_then_callback_stores_an_oauth_connection_in_the_workspace(api: Api) -> None:
    started = start(api, api.a)
    assert started.status_code == 200, started.text
    flow = started.json()
    assert flow["redirect_uri"] == api.base_url + CALLBACK
    assert set(flow["scopes"]) >= {"accounts:read", "data-privacy:write", "profiles:read"}
    query = parse_qs(urlsplit(flow["authorize_url"]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["state"][0]) >= 32
    assert len(query["code_challenge"][0]) == len(Pkce.challenge_for("x"))
    assert "client_secret" not in flow["authorize_url"]

    redirect = consent(flow["authorize_url"])
    callback = httpx.get(redirect.headers["location"], timeout=30.0)  # no bearer token

    assert callback.status_code == 201, callback.text
    made = callback.json()
    assert made["name"] == "app"
    assert made["kind"] == "oauth"
    assert "data-privacy:write" in made["scopes"]
    assert [c["id"] for c in api.a.get("/api/v1/connections").json()] == [made["id"]]
    assert api.b.get("/api/v1/connections").json() == []
    store: SqlConnectionStore = api.app.state.kbridge.store(api.workspace_a)
    secrets = store.secrets("app")
    assert secrets["access_token"]
    assert secrets["refresh_token"]
    assert secrets["access_token"] not in callback.text

    # the state is good once
    again = httpx.get(redirect.headers["location"], timeout=30.0)
    assert again.status_code == 422
    assert again.json()["error"]["field"] == "state"


def test_a_forged_or_missing_state_is_422_naming_state_and_nothing_is_stored(api: Api) -> None:
    flow = start(api, api.a).json()
    redirect = consent(flow["authorize_url"]).headers["location"]
    code = parse_qs(urlsplit(redirect).query)["code"][0]
    for query in ({"code": code, "state": "forged"}, {"code": code}):
        reply = httpx.get(api.base_url + CALLBACK, params=query, timeout=30.0)
        assert reply.status_code == 422, reply.text
        assert reply.json()["error"]["field"] == "state"
    assert api.a.get("/api/v1/connections").json() == []


def test_a_flow_left_past_its_15_minutes_is_refused(api: Api) -> None:
    flow = start(api, api.a).json()
    redirect = consent(flow["authorize_url"]).headers["location"]
    api.clock.advance(16 * 60)

    reply = httpx.get(redirect, timeout=30.0)

    assert reply.status_code == 422
    assert reply.json()["error"]["field"] == "state"
    assert api.a.get("/api/v1/connections").json() == []


def test_denied_consent_is_422_naming_error(api: Api) -> None:
    flow = start(api, api.a).json()
    state = parse_qs(urlsplit(flow["authorize_url"]).query)["state"][0]

    reply = httpx.get(
        api.base_url + CALLBACK, params={"state": state, "error": "access_denied"}, timeout=30.0
    )

    assert reply.status_code == 422
    assert reply.json()["error"]["field"] == "error"
    assert "denied" in reply.json()["error"]["message"]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"capabilities": ["teleport"]}, "capabilities"),
        ({"name": "no spaces"}, "name"),
        ({"base_url": "ftp://x"}, "base_url"),
        ({"redirect_uri": "javascript:alert(1)"}, "redirect_uri"),
        ({"rate_limits": "fast"}, "rate_limits"),
        ({"client_id": ""}, "client_id"),
    ],
)
def test_bad_input_to_start_is_422_naming_the_field(
    api: Api, extra: dict[str, Any], field: str
) -> None:
    reply = start(api, api.a, **extra)
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"]["field"] == field


def test_start_needs_a_token_and_a_taken_name_is_409(api: Api) -> None:
    api.connect(api.a, name="app")
    assert start(api, api.a).status_code == 409
    with api.anonymous() as anonymous:
        assert start(api, anonymous).status_code == 401
    assert start(api, api.b).status_code == 200  # another workspace may use the name
