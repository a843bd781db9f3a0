"""Fault injection over real loopback HTTP: what a client actually sees on the wire.

The socket-level faults (reset, truncate, timeout, stall) only mean something
against a real server, so these run uvicorn and a plain httpx client. Each
test sets its spec through the control plane and turns it off again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from kbridge.emulator import EmulatorConfig, EmulatorServer
from kbridge.testing.plugin import http_client_for

pytestmark = pytest.mark.integration

JSONAPI = "application/vnd.api+json"


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    config = EmulatorConfig(seed=11, profiles=50, events=100, rate_limit_factor=None)
    with EmulatorServer(config) as running:
        yield running


@pytest.fixture
def api(server: EmulatorServer) -> Iterator[httpx.Client]:
    with http_client_for(server) as client:
        yield client
    with httpx.Client(base_url=server.base_url) as plane:
        assert plane.post("/_emulator/faults", json="off").status_code == 200


def set_faults(server: EmulatorServer, spec: str) -> dict[str, object]:
    with httpx.Client(base_url=server.base_url) as plane:
        response = plane.post("/_emulator/faults", json=spec)
    assert response.status_code == 200, response.text
    return dict(response.json())


def create_list(client: httpx.Client, name: str) -> httpx.Response:
    body = {"data": {"type": "list", "attributes": {"name": name}}}
    return client.post("/api/lists", json=body, headers={"content-type": JSONAPI})


def lists_named(client: httpx.Client, name: str) -> int:
    response = client.get("/api/lists", params={"filter": f'any(name,["{name}"])'})
    assert response.status_code == 200, response.text
    return len(response.json()["data"])


def test_http500_and_503_are_jsonapi_errors_and_leave_no_write(
    server: EmulatorServer, api: httpx.Client
) -> None:
    name = f"faulted-{uuid.uuid4()}"
    set_faults(server, "http500=1")
    failed = create_list(api, name)
    assert failed.status_code == 500
    assert failed.headers["content-type"] == JSONAPI
    assert failed.json()["errors"][0]["code"] == "error"
    set_faults(server, "http503=1@4s")
    unavailable = create_list(api, name)
    assert unavailable.status_code == 503
    assert unavailable.headers["retry-after"] == "4"
    set_faults(server, "off")
    assert lists_named(api, name) == 0


def test_faults_never_touch_the_control_plane_or_oauth(
    server: EmulatorServer, api: httpx.Client
) -> None:
    set_faults(server, "reset=1")
    with httpx.Client(base_url=server.base_url) as plane:
        assert plane.get("/_emulator/clock").status_code == 200
        registered = plane.post("/_emulator/oauth-clients", json={"redirect_uris": ["http://x/cb"]})
        assert registered.status_code == 201
        token = plane.post("/oauth/token", data={"grant_type": "refresh_token"})
        assert token.status_code == 401  # an OAuth answer, not a dropped connection


def test_reset_drops_the_connection_before_the_backend(
    server: EmulatorServer, api: httpx.Client
) -> None:
    name = f"reset-{uuid.uuid4()}"
    set_faults(server, "reset=1")
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        create_list(api, name)
    set_faults(server, "off")
    assert lists_named(api, name) == 0


def test_truncate_applies_the_write_but_cuts_the_answer(
    server: EmulatorServer, api: httpx.Client
) -> None:
    name = f"truncated-{uuid.uuid4()}"
    set_faults(server, "truncate=1")
    with pytest.raises(httpx.RemoteProtocolError):
        create_list(api, name)
    set_faults(server, "off")
    assert lists_named(api, name) == 1


def test_timeout_outlasts_a_short_read_timeout_then_answers_504(
    server: EmulatorServer, api: httpx.Client
) -> None:
    set_faults(server, "timeout=1@300ms")
    with pytest.raises(httpx.ReadTimeout):
        api.get("/api/accounts", timeout=httpx.Timeout(5.0, read=0.05))
    patient = api.get("/api/accounts", timeout=10.0)
    assert patient.status_code == 504
    assert patient.json()["errors"][0]["status"] == 504


def test_stall_answers_nothing_until_the_client_gives_up(
    server: EmulatorServer, api: httpx.Client
) -> None:
    set_faults(server, "stall=1@30s")
    with pytest.raises(httpx.ReadTimeout):
        api.get("/api/accounts", timeout=httpx.Timeout(5.0, read=0.2))
    set_faults(server, "off")
    assert api.get("/api/accounts").status_code == 200


def test_challenge403_looks_like_cloudflare(server: EmulatorServer, api: httpx.Client) -> None:
    set_faults(server, "challenge403=1")
    response = api.get("/api/accounts")
    assert response.status_code == 403
    assert response.headers["cf-mitigated"] == "challenge"
    assert response.headers["content-type"].startswith("text/html")


def test_the_same_spec_replays_the_same_faults_and_stats_count_them(
    server: EmulatorServer, api: httpx.Client
) -> None:
    def run() -> list[int]:
        set_faults(server, "http500=0.3,http503=0.2,latency=1ms")
        return [api.get("/api/accounts").status_code for _ in range(20)]

    first = run()
    assert first == run()
    assert {200, 500, 503} <= set(first)
    with httpx.Client(base_url=server.base_url) as plane:
        stats = plane.get("/_emulator/stats").json()["faults"]
    assert stats["spec"] == "http503=0.2,http500=0.3,latency=1ms"
    assert stats["injected"]["http500"] >= first.count(500)
    assert stats["injected"]["http503"] >= first.count(503)
    assert stats["injected"]["latency"] >= 40


def test_a_client_that_hangs_up_while_delayed_is_no_emulator_failure(
    server: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    # A worker killed mid-request (the service benchmark stops its workers so) is the
    # client's doing: no traceback in the emulator's log, no 500 in its stats.
    import socket
    import time
    from urllib.parse import urlsplit

    set_faults(server, "latency=300ms")
    server.state.stats.clear()
    where = urlsplit(server.base_url)
    with socket.create_connection((where.hostname, where.port)) as sock:
        sock.sendall(
            f"GET /api/profiles HTTP/1.1\r\nHost: {where.netloc}\r\n"
            f"Authorization: Klaviyo-API-Key {server.api_key}\r\n"
            "revision: 2026-07-15\r\n\r\n".encode()
        )
    deadline = time.monotonic() + 10
    while not server.state.stats.snapshot()["operations"] and time.monotonic() < deadline:
        time.sleep(0.05)
    set_faults(server, "")
    statuses = server.state.stats.snapshot()["operations"]["get_profiles"]["statuses"]
    assert statuses == {"499": 1}  # nginx's "client closed request", not a failure of ours
    assert not [r for r in caplog.records if "unexpected error" in r.getMessage()]
