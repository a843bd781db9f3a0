"""The emulator over real loopback HTTP: server lifecycle and Klaviyo's wire behaviour."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from kbridge.catalog import REVISION
from kbridge.emulator import EmulatorConfig, EmulatorServer, EmulatorServerError
from kbridge.testing.plugin import http_client_for

pytestmark = pytest.mark.integration

JSONAPI = "application/vnd.api+json"


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == JSONAPI
    (error,) = response.json()["errors"]
    assert error["status"] == status
    assert error["code"] == code
    assert {"id", "title", "detail", "source", "meta"} <= set(error)
    return dict(error)


def test_server_picks_a_free_port_and_stops_cleanly() -> None:
    server = EmulatorServer(EmulatorConfig(profiles=5, events=20, rate_limit_factor=None))
    with server:
        assert server.port > 0
        assert server.base_url == f"http://127.0.0.1:{server.port}"
        with http_client_for(server) as client:
            assert client.get("/api/accounts").status_code == 200
        with pytest.raises(EmulatorServerError, match="already in use"):
            EmulatorServer(EmulatorConfig(profiles=0, events=0), port=server.port).start()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.base_url}/api/accounts", timeout=2)
    server.stop()  # stopping twice is harmless


def test_the_full_access_key_is_derived_from_the_seed(emulator: EmulatorServer) -> None:
    key = emulator.api_key
    assert key.startswith("pk_")
    assert len(key) == 37
    assert key[3:].isalnum()
    from kbridge.emulator.http.auth import generate_private_key

    assert key == generate_private_key(emulator.config.seed)


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer pk_notatoken", "Klaviyo-API-Key pk_unknownunknownunknownunknown00000"],
)
def test_401_variants(emulator: EmulatorServer, authorization: str | None) -> None:
    headers = {"revision": REVISION}
    if authorization:
        headers["Authorization"] = authorization
    r = httpx.get(f"{emulator.base_url}/api/accounts", headers=headers)
    error = error_of(r, 401, "not_authenticated")
    assert error["title"] == "Authentication credentials were not provided."
    assert error["source"] == {"pointer": "/data/"}


def test_403_with_a_scoped_key_minted_on_the_control_plane(
    emulator: EmulatorServer, emulator_client: httpx.Client
) -> None:
    minted = emulator_client.post("/_emulator/keys", json={"scopes": ["profiles:read"]})
    assert minted.status_code == 201
    with http_client_for(emulator, key=minted.json()["key"]) as scoped:
        assert scoped.get("/api/profiles").status_code == 200
        error = error_of(scoped.get("/api/events"), 403, "permission_denied")
    assert "events:read" in str(error["detail"])


def test_revision_rules(emulator_client: httpx.Client) -> None:
    assert emulator_client.get("/api/accounts", headers={"revision": "2026-10-15"}).is_success
    assert emulator_client.get("/api/accounts", headers={"revision": "2026-07-15.pre"}).is_success
    future = emulator_client.get("/api/accounts", headers={"revision": "2099-01-01"})
    assert "future revision" in str(error_of(future, 400, "invalid")["detail"])
    bad = error_of(emulator_client.get("/api/accounts", headers={"revision": "v3"}), 400, "invalid")
    assert bad["source"] == {"parameter": "revision"}


def test_429_with_retry_after_on_a_tiny_factor(
    emulator_factory: Callable[..., EmulatorServer],
) -> None:
    server = emulator_factory(rate_limit_factor=0.02)
    with http_client_for(server) as client:
        first = client.get("/api/accounts")
        second = client.get("/api/accounts")
    assert first.status_code == 200
    assert first.headers["RateLimit-Limit"]
    error = error_of(second, 429, "throttled")
    retry_after = int(second.headers["Retry-After"])
    assert retry_after >= 1
    assert error["title"] == "Request was throttled."
    assert error["detail"] == f"Request was throttled. Expected available in {retry_after} seconds."
    assert error["source"] == {"pointer": "/data/"}
    assert "RateLimit-Limit" not in second.headers


def test_404_405_415_and_501(emulator_client: httpx.Client) -> None:
    error_of(emulator_client.get("/api/unicorns"), 404, "not_found")
    not_allowed = emulator_client.delete("/api/profiles")
    error_of(not_allowed, 405, "method_not_allowed")
    wrong_media = emulator_client.post(
        "/api/profiles", content=b"email=a@b.c", headers={"content-type": "text/plain"}
    )
    error_of(wrong_media, 415, "unsupported_media_type")
    # every spec operation is emulated; a backend serving fewer (Backend is a protocol
    # that others implement) still gets Klaviyo-shaped 501s naming the operation
    from kbridge.emulator.backend.emulator import EmulatorBackend
    from kbridge.emulator.simclock import SimClock

    class WithoutGetProfile(EmulatorBackend):
        @property
        def implemented(self) -> frozenset[str]:
            return super().implemented - {"get_profile"}

    config = EmulatorConfig(seed=1, profiles=2, events=2)
    partial = WithoutGetProfile(config, SimClock())
    with EmulatorServer(config, backend=partial) as server, http_client_for(server) as http:
        not_emulated = http.get("/api/profiles/x")
    assert "get_profile" in str(error_of(not_emulated, 501, "not_implemented")["detail"])


def test_pagination_links_keep_query_parameters(emulator_client: httpx.Client) -> None:
    params = {"page[size]": "7", "fields[profile]": "email", "sort": "email"}
    first = emulator_client.get("/api/profiles", params=params)
    assert first.status_code == 200, first.text
    body = first.json()
    assert len(body["data"]) == 7
    nxt = body["links"]["next"]
    assert nxt.startswith(f"{emulator_client.base_url}/api/profiles?")
    query = dict(parse_qsl(urlsplit(nxt).query))
    assert {k: query[k] for k in params} == params
    assert query["page[cursor]"]
    seen = [p["id"] for p in body["data"]]
    url: str | None = nxt
    while url:
        page = emulator_client.get(url).json()
        seen += [p["id"] for p in page["data"]]
        url = page["links"]["next"]
    assert len(seen) == len(set(seen)) == 40
    emails = []
    for pid in seen[:3]:
        emails.append(
            emulator_client.get(f"/api/profiles/{pid}").json()["data"]["attributes"]["email"]
        )
    assert emails == sorted(emails)


def test_sparse_fieldsets_and_links(emulator_client: httpx.Client) -> None:
    r = emulator_client.get("/api/profiles", params={"fields[profile]": "email,location.country"})
    assert r.status_code == 200, r.text
    for profile in r.json()["data"]:
        assert set(profile["attributes"]) <= {"email", "location"}
        assert set(profile["attributes"].get("location", {})) <= {"country"}
        assert profile["links"]["self"] == (
            f"{emulator_client.base_url}/api/profiles/{profile['id']}/"
        )


def test_include_puts_related_resources_in_included(emulator_client: httpx.Client) -> None:
    r = emulator_client.get("/api/events", params={"include": "metric", "page[size]": "5"})
    assert r.status_code == 200, r.text
    body = r.json()
    metric_ids = {e["relationships"]["metric"]["data"]["id"] for e in body["data"]}
    included = {(i["type"], i["id"]) for i in body["included"]}
    assert {("metric", m) for m in metric_ids} <= included
    event = body["data"][0]
    assert event["relationships"]["metric"]["links"]["related"].endswith(
        f"/api/events/{event['id']}/metric/"
    )


def test_control_plane_over_http(emulator_factory: Callable[..., EmulatorServer]) -> None:
    server = emulator_factory(profiles=10, events=50)
    with http_client_for(server) as client:
        client.get("/api/accounts")
        stats = client.get("/_emulator/stats").json()
        assert stats["operations"]["get_accounts"]["requests"] == 1
        now = client.get("/_emulator/clock").json()["now"]
        later = client.post("/_emulator/clock", json={"advance_seconds": 86400}).json()["now"]
        assert later > now
        truth = client.get("/_emulator/truth")
        assert truth.status_code == 200
        assert truth.json()
        created = client.post(
            "/api/profiles",
            json={"data": {"type": "profile", "attributes": {"email": "fresh@example.com"}}},
        )
        assert created.status_code == 201, created.text
        pid = created.json()["data"]["id"]
        assert client.post("/_emulator/reset").status_code == 200
        assert client.get(f"/api/profiles/{pid}").status_code == 404
