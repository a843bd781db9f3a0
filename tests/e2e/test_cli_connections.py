"""`kbridge connect / connections / disconnect / scopes` as a user runs them, on the emulator."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kbridge.connections import ConnectionStore, OAuthClient, connect_with_oauth
from kbridge.emulator import EmulatorConfig, EmulatorServer

pytestmark = pytest.mark.e2e

KBRIDGE = str(Path(sys.executable).with_name("kbridge"))


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(
        EmulatorConfig(seed=21, profiles=50, events=100, rate_limit_factor=None)
    ) as s:
        yield s


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KBRIDGE_", "KLAVIYO_"))}
    return {**clean, "NO_COLOR": "1", "COLUMNS": "200", "KBRIDGE_HOME": str(tmp_path / "home")}


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KBRIDGE, *args], capture_output=True, text=True, check=False, env=env, timeout=60
    )


def mint_key(server: EmulatorServer, scopes: list[str]) -> str:
    reply = httpx.post(f"{server.base_url}/_emulator/keys", json={"scopes": scopes})
    reply.raise_for_status()
    key: str = reply.json()["key"]
    return key


def test_connect_list_show_test_rotate_disconnect(
    server: EmulatorServer, env: dict[str, str]
) -> None:
    base = ("--base-url", server.base_url)
    first = run(env, "connect", "shop", "--api-key", server.api_key, *base)
    assert first.returncode == 0, first.stderr
    assert "connected 'shop': account" in first.stdout
    assert "✓ sync" in first.stdout
    listed = run(env, "connections", "list", "--json")
    assert [c["name"] for c in json.loads(listed.stdout)] == ["shop"]
    shown = run(env, "connections", "show", "shop", "--json")
    data = json.loads(shown.stdout)
    assert data["sender_email"] == "hello@northwind.example.com"
    assert server.api_key not in shown.stdout + listed.stdout
    tested = run(env, "connections", "test", "shop", "--for", "sync,privacy-delete")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "✓ privacy-delete" in tested.stdout

    new_key = mint_key(server, ["accounts:read", "profiles:read", "events:read"])
    rotated = run(env, "connect", "shop", "--api-key", new_key, *base)
    assert rotated.returncode == 0, rotated.stderr
    assert "rotated 'shop'" in rotated.stdout
    assert "✗ sync: missing campaigns:read" in rotated.stdout
    assert json.loads(run(env, "connections", "show", "shop", "--json").stdout)["id"] == data["id"]
    failing = run(env, "connections", "test", "shop", "--for", "privacy-delete")
    assert failing.returncode == 1
    assert "✗ privacy-delete: missing data-privacy:write" in failing.stdout

    gone = run(env, "disconnect", "shop")
    assert gone.returncode == 0
    assert "delete it in Klaviyo" in gone.stdout
    assert json.loads(run(env, "connections", "list", "--json").stdout) == []
    missing = run(env, "connections", "show", "shop")
    assert missing.returncode == 1
    assert "no connection named 'shop'" in missing.stderr


def test_key_problems_are_one_clear_line(server: EmulatorServer, env: dict[str, str]) -> None:
    public = run(env, "connect", "x", "--api-key", "AbC123", "--base-url", server.base_url)
    assert public.returncode == 1
    assert "*public* key" in public.stderr
    no_accounts = mint_key(server, ["profiles:read"])
    denied = run(env, "connect", "x", "--api-key", no_accounts, "--base-url", server.base_url)
    assert denied.returncode == 1
    assert "lacks accounts:read" in denied.stderr
    assert "capability connect" in denied.stderr
    for result in (public, denied):
        assert "Traceback" not in result.stderr
        assert no_accounts not in result.stderr


def test_wrong_master_key_is_reported_not_garbage(
    server: EmulatorServer, env: dict[str, str]
) -> None:
    keyed = {**env, "KBRIDGE_MASTER_KEY": "11" * 32}
    assert (
        run(
            keyed,
            "connect",
            "shop",
            "--api-key",
            server.api_key,
            "--base-url",
            server.base_url,
            "--for",
            "connect",
        ).returncode
        == 0
    )
    wrong = run({**env, "KBRIDGE_MASTER_KEY": "22" * 32}, "connections", "list")
    assert wrong.returncode == 1
    assert "wrong KBRIDGE_MASTER_KEY?" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    malformed = run({**env, "KBRIDGE_MASTER_KEY": "short"}, "connections", "list")
    assert malformed.returncode == 1
    assert "64 hex digits or as base64" in malformed.stderr


def test_scopes_prints_the_least_set_with_reasons(env: dict[str, str]) -> None:
    result = run(env, "scopes", "--for", "sync,privacy-delete")
    assert result.returncode == 0
    lines = [line for line in result.stdout.splitlines() if not line.startswith("#")]
    scopes = [line.split()[0] for line in lines]
    assert scopes == sorted(scopes)
    assert "data-privacy:write" in scopes
    assert not any(s.endswith(":write") for s in scopes if s != "data-privacy:write")
    assert any(
        line.split() == ["data-privacy:write", "privacy-delete:", "request_profile_deletion"]
        for line in lines
    )
    bad = run(env, "scopes", "--for", "unicorns")
    assert bad.returncode == 1
    assert "unknown capability 'unicorns'" in bad.stderr


def test_oauth_connect_through_the_loopback_redirect(
    server: EmulatorServer, env: dict[str, str]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = httpx.post(
        f"{server.base_url}/_emulator/oauth-clients",
        json={"redirect_uris": [f"http://127.0.0.1:{port}/callback"]},
    ).json()
    args = [
        KBRIDGE,
        "connect",
        "app",
        "--oauth",
        "--client-id",
        app["client_id"],
        "--base-url",
        server.base_url,
        "--redirect-port",
        str(port),
        "--no-browser",
        "--for",
        "connect,privacy-delete",
    ]
    proc_env = {**env, "PYTHONUNBUFFERED": "1", "KBRIDGE_OAUTH_CLIENT_SECRET": app["client_secret"]}
    with subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=proc_env
    ) as proc:
        assert proc.stdout is not None
        url = ""
        for line in proc.stdout:
            if line.strip().startswith("http"):
                url = line.strip()
                break
        assert "code_challenge_method=S256" in url
        assert httpx.get(url, follow_redirects=True, timeout=10).status_code == 200
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "connected 'app'" in out
    assert "✓ privacy-delete" in out
    shown = json.loads(run(env, "connections", "show", "app", "--json").stdout)
    assert shown["kind"] == "oauth"
    assert shown["oauth_client_id"] == app["client_id"]
    assert app["client_secret"] not in out + err
    assert run(env, "disconnect", "app").returncode == 0


def test_other_commands_take_connection_name(server: EmulatorServer, env: dict[str, str]) -> None:
    narrow = mint_key(server, ["accounts:read"])
    assert (
        run(
            env,
            "connect",
            "narrow",
            "--api-key",
            narrow,
            "--base-url",
            server.base_url,
            "--for",
            "connect",
        ).returncode
        == 0
    )
    account = run(env, "accounts", "list", "--connection", "narrow", "--output", "json")
    assert account.returncode == 0, account.stderr
    assert json.loads(account.stdout)[0]["attributes"]["contact_information"]["organization_name"]
    denied = run(env, "profiles", "list", "--connection", "narrow")
    assert denied.returncode == 1
    assert "profiles:read" in denied.stderr
    assert narrow not in denied.stderr


def test_a_tampered_base_url_sends_the_key_nowhere(
    server: EmulatorServer, env: dict[str, str]
) -> None:
    connected = run(
        env,
        "connect",
        "shop",
        "--api-key",
        server.api_key,
        "--base-url",
        server.base_url,
        "--for",
        "connect",
    )
    assert connected.returncode == 0, connected.stderr
    with socket.socket() as trap:
        trap.bind(("127.0.0.1", 0))
        trap.listen(8)
        trap.setblocking(False)
        store = Path(env["KBRIDGE_HOME"]) / "connections.sqlite3"
        with contextlib.closing(sqlite3.connect(store)) as conn, conn:
            conn.execute(
                "UPDATE connections SET base_url = ?",
                (f"http://127.0.0.1:{trap.getsockname()[1]}",),
            )
        for args in (("accounts", "list", "--connection", "shop"), ("connections", "test", "shop")):
            refused = run(env, *args)
            assert refused.returncode == 1, refused.stdout
            assert refused.stderr.count("\n") == 1, refused.stderr
            assert "'shop'" in refused.stderr
            assert "changed outside kbridge" in refused.stderr
            assert server.api_key not in refused.stdout + refused.stderr
        with pytest.raises(BlockingIOError):
            trap.accept()  # nobody knocked: no request reached the address in the file
    again = run(env, "connect", "shop", "--api-key", server.api_key, "--base-url", server.base_url)
    assert again.returncode == 0, again.stderr
    account = run(env, "accounts", "list", "--connection", "shop", "--output", "json")
    assert account.returncode == 0, account.stderr


def test_two_commands_with_an_expired_oauth_grant_both_refresh_it(
    server: EmulatorServer, env: dict[str, str]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = httpx.post(
        f"{server.base_url}/_emulator/oauth-clients",
        json={"redirect_uris": [f"http://127.0.0.1:{port}/callback"]},
    ).json()
    store = ConnectionStore(Path(env["KBRIDGE_HOME"]) / "connections.sqlite3")
    asyncio.run(
        connect_with_oauth(
            store,
            "app",
            OAuthClient.at(server.base_url, app["client_id"], app["client_secret"]),
            scopes=("accounts:read", "profiles:read"),
            open_url=lambda url: httpx.get(url, follow_redirects=True, timeout=10),
            base_url=server.base_url,
            capabilities=("connect",),
            redirect_port=port,
            redirect_wait=10.0,
        )
    )
    command = [KBRIDGE, "profiles", "list", "--connection", "app", "--limit", "1", "-o", "json"]
    for _ in range(4):
        # the emulator's clock passes the access token's life: both processes meet a 401
        httpx.post(
            f"{server.base_url}/_emulator/clock", json={"advance_seconds": 3700}
        ).raise_for_status()
        procs = [
            subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
            )
            for _ in range(2)
        ]
        for proc in procs:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            assert len(json.loads(out)) == 1


def test_a_second_connection_of_the_same_account_connects_with_one_warning_line(
    server: EmulatorServer, env: dict[str, str]
) -> None:
    base = ("--base-url", server.base_url)
    assert run(env, "connect", "shop", "--api-key", server.api_key, *base).returncode == 0
    # another key of the same account (say, narrower scopes): intended, maybe
    narrow = mint_key(server, ["accounts:read", "profiles:read"])

    second = run(env, "connect", "shop-narrow", "--api-key", narrow, *base)

    assert second.returncode == 0, second.stderr
    assert "connected 'shop-narrow'" in second.stdout
    warnings = [line for line in second.stderr.splitlines() if "'shop'" in line]
    assert len(warnings) == 1, second.stderr
    account = json.loads(run(env, "connections", "show", "shop", "--json").stdout)["account_id"]
    assert warnings[0].startswith("warning: ")
    assert account in warnings[0]
    assert narrow not in second.stdout + second.stderr
    listed = run(env, "connections", "list", "--json")
    assert sorted(c["name"] for c in json.loads(listed.stdout)) == ["shop", "shop-narrow"]
    # rotating a connection's key is not a second connection: no warning
    rotated = run(env, "connect", "shop", "--api-key", server.api_key, *base)
    assert rotated.returncode == 0, rotated.stderr
    assert "warning" not in rotated.stderr
