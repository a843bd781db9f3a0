"""Issue 17 item 8: the control plane refuses what a browser on a foreign site can send.

A page on any site can make a browser POST ``text/plain`` to loopback (no CORS
preflight), and DNS rebinding lets it do so under its own host name. Every
request here is a real HTTP request over loopback to a real server.
"""

from __future__ import annotations

import httpx
import pytest

from kbridge.catalog import REVISION
from kbridge.emulator import EmulatorConfig, EmulatorServer, EmulatorServerError

pytestmark = pytest.mark.integration


def _api_headers(server: EmulatorServer, key: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Klaviyo-API-Key {key or server.api_key}", "revision": REVISION}


def test_a_text_plain_post_mints_no_key(emulator: EmulatorServer) -> None:
    # what <form enctype="text/plain"> or fetch(..., {mode: "no-cors"}) sends
    reply = httpx.post(
        f"{emulator.base_url}/_emulator/keys",
        content=b'{"scopes": ["profiles:read"]}',
        headers={"Content-Type": "text/plain"},
    )
    assert reply.status_code == 415, reply.text
    assert "key" not in reply.json()
    assert "application/json" in reply.json()["error"]


def test_a_form_post_to_the_faults_plane_is_refused(emulator: EmulatorServer) -> None:
    reply = httpx.post(
        f"{emulator.base_url}/_emulator/faults",
        content=b"http500=1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert reply.status_code == 415
    assert httpx.get(f"{emulator.base_url}/_emulator/faults").json()["spec"] in (None, "off", "")


def test_a_foreign_origin_is_refused_even_with_json(emulator: EmulatorServer) -> None:
    url = f"{emulator.base_url}/_emulator/keys"
    body = {"scopes": ["profiles:read"]}
    foreign = httpx.post(url, json=body, headers={"Origin": "http://evil.example"})
    opaque = httpx.post(url, json=body, headers={"Origin": "null"})
    own = httpx.post(url, json=body, headers={"Origin": emulator.base_url})
    assert foreign.status_code == 403
    assert "key" not in foreign.json()
    assert opaque.status_code == 403
    assert own.status_code == 201


@pytest.mark.parametrize("path", ["/_emulator/stats", "/api/accounts", "/oauth/token"])
def test_a_rebound_host_name_is_not_served(emulator: EmulatorServer, path: str) -> None:
    # DNS rebinding: evil.example now resolves to 127.0.0.1, the browser sends its own name
    reply = httpx.get(
        f"{emulator.base_url}{path}",
        headers={**_api_headers(emulator), "Host": f"evil.example:{emulator.port}"},
    )
    assert reply.status_code == 421, reply.text
    assert "evil.example" not in reply.text  # not echoed back


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}"])
def test_the_bound_address_is_served_under_its_loopback_names(
    emulator: EmulatorServer, host: str
) -> None:
    reply = httpx.get(
        f"{emulator.base_url}/api/accounts",
        headers={**_api_headers(emulator), "Host": host.format(port=emulator.port)},
    )
    assert reply.status_code == 200, reply.text


def test_another_port_in_the_host_header_is_refused(emulator: EmulatorServer) -> None:
    reply = httpx.get(
        f"{emulator.base_url}/_emulator/stats", headers={"Host": f"127.0.0.1:{emulator.port + 1}"}
    )
    assert reply.status_code == 421


def test_an_admin_token_guards_the_plane_and_only_the_plane() -> None:
    config = EmulatorConfig(profiles=2, events=0, rate_limit_factor=None, admin_token="t0ken-1")
    with EmulatorServer(config) as server:
        url = f"{server.base_url}/_emulator/keys"
        body = {"scopes": ["profiles:read"]}
        missing = httpx.post(url, json=body)
        wrong = httpx.post(url, json=body, headers={"Authorization": "Bearer t0ken-2"})
        api_key = httpx.post(url, json=body, headers=_api_headers(server))
        right = httpx.post(url, json=body, headers={"Authorization": "Bearer t0ken-1"})
        api = httpx.get(f"{server.base_url}/api/accounts", headers=_api_headers(server))
    assert missing.status_code == 401
    assert wrong.status_code == 401
    assert api_key.status_code == 401
    assert "t0ken" not in missing.text + wrong.text
    assert right.status_code == 201
    assert api.status_code == 200


def test_binding_beyond_loopback_needs_an_admin_token() -> None:
    config = EmulatorConfig(profiles=0, events=0, rate_limit_factor=None)
    with pytest.raises(EmulatorServerError, match="--admin-token"):
        EmulatorServer(config, host="0.0.0.0").start()
    with EmulatorServer(replace_token(config), host="0.0.0.0") as server:
        # a loopback client of a server bound to every interface still names the port it reached
        reply = httpx.get(
            f"http://127.0.0.1:{server.port}/_emulator/stats",
            headers={"Authorization": "Bearer s3cret-admin"},
        )
        assert reply.status_code == 200, reply.text


def replace_token(config: EmulatorConfig) -> EmulatorConfig:
    from dataclasses import replace

    return replace(config, admin_token="s3cret-admin")


def test_the_admin_token_is_not_in_the_config_repr() -> None:
    assert "s3cret" not in repr(EmulatorConfig(admin_token="s3cret-admin"))
