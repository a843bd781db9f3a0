"""``kbridge <resource> <action>`` and ``kbridge raw`` through the real console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kbridge.emulator import EmulatorConfig, EmulatorServer

pytestmark = pytest.mark.e2e

KBRIDGE = str(Path(sys.executable).with_name("kbridge"))


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(
        EmulatorConfig(seed=11, profiles=50, events=200, rate_limit_factor=None)
    ) as running:
        yield running


def run(
    server: EmulatorServer | None, *args: str, key: str | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KLAVIYO_")}
    env.update({"NO_COLOR": "1", "COLUMNS": "200"})
    if server is not None:
        env["KLAVIYO_BASE_URL"] = server.base_url
        env["KLAVIYO_API_KEY"] = key or server.api_key
    return subprocess.run(
        [KBRIDGE, *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=60,
        input=stdin,
    )


def ok_json(result: subprocess.CompletedProcess[str]) -> object:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_profiles_create_get_list_update(server: EmulatorServer) -> None:
    made = ok_json(
        run(
            server, "profiles", "create", "--email", "cli@example.com", "--first-name", "Cli",
            "--phone-number", "+15005550199", "--properties", '{"tier": "gold"}',
        )
    )  # fmt: skip
    assert isinstance(made, dict)
    pid = made["id"]
    assert made["attributes"]["properties"] == {"tier": "gold"}
    got = ok_json(run(server, "profiles", "get", pid))
    assert isinstance(got, dict)
    assert got["attributes"]["email"] == "cli@example.com"
    found = ok_json(run(server, "profiles", "list", "--filter", "equals(email,'cli@example.com')"))
    assert [p["id"] for p in found] == [pid]  # type: ignore[union-attr]
    updated = ok_json(run(server, "profiles", "update", pid, "--last-name", "Line"))
    assert updated["attributes"]["last_name"] == "Line"  # type: ignore[index]


def test_piped_output_is_json_and_jsonl_streams_with_limit(server: EmulatorServer) -> None:
    lines = run(server, "profiles", "list", "--limit", "7", "-o", "jsonl", "--page-size", "3")
    assert lines.returncode == 0, lines.stderr
    rows = [json.loads(line) for line in lines.stdout.splitlines()]
    assert len(rows) == 7
    assert len({r["id"] for r in rows}) == 7
    table = run(server, "profiles", "list", "--limit", "2", "-o", "table")
    assert table.returncode == 0
    assert "profile" in table.stdout
    assert "┃ type" in table.stdout


def test_lists_add_profiles_and_members(server: EmulatorServer) -> None:
    made = ok_json(run(server, "lists", "create", "--name", "CLI list"))
    lid = made["id"]  # type: ignore[index]
    ids = [p["id"] for p in ok_json(run(server, "profiles", "list", "--limit", "2"))]  # type: ignore[union-attr]
    added = ok_json(
        run(server, "lists", "add-profiles", lid, "--profile-id", ids[0], "--profile-id", ids[1])
    )
    assert added == {"sent": 2}
    members = ok_json(run(server, "lists", "profiles", lid))
    assert sorted(m["id"] for m in members) == sorted(ids)  # type: ignore[union-attr]
    deleted = run(server, "lists", "delete", lid)
    assert deleted.returncode == 0
    assert "done: lists delete" in deleted.stderr
    gone = run(server, "lists", "get", lid)
    assert gone.returncode == 1
    assert gone.stderr.startswith("error: 'lists get' failed: 404")


def test_templates_create_from_an_html_file(server: EmulatorServer, tmp_path: Path) -> None:
    page = tmp_path / "t.html"
    page.write_text("<p>Hello {{ first_name }}</p>", encoding="utf-8")
    made = ok_json(
        run(server, "templates", "create", "--name", "CLI tpl", "--html-file", str(page))
    )
    assert made["attributes"]["html"] == "<p>Hello {{ first_name }}</p>"  # type: ignore[index]
    rendered = ok_json(
        run(server, "templates", "render", made["id"], "--context", '{"first_name": "Ada"}')  # type: ignore[index]
    )
    assert "Hello Ada" in rendered["attributes"]["html"]  # type: ignore[index]


def test_missing_scope_is_one_line_naming_scope_and_action(server: EmulatorServer) -> None:
    key = httpx.post(
        f"{server.base_url}/_emulator/keys", json={"scopes": ["templates:read"]}, timeout=10
    ).json()["key"]
    result = run(server, "templates", "create", "--name", "x", "--html-file", __file__, key=key)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        "error: this key lacks the scope templates:write needed by 'templates create'"
    )
    assert key not in result.stderr
    debug = run(
        server, "templates", "create", "--name", "x", "--html-file", __file__, "--debug", key=key
    )
    assert "request id" in debug.stderr
    assert "403" in debug.stderr
    assert key not in debug.stderr + debug.stdout


def test_bad_input_names_the_field_and_sends_nothing(server: EmulatorServer) -> None:
    before = httpx.get(f"{server.base_url}/_emulator/stats", timeout=10).json()["requests"]
    bad_email = run(server, "profiles", "create", "--email", "not-an-email")
    assert bad_email.returncode == 1
    assert bad_email.stderr.startswith("error: email: 'not-an-email' is not a valid email")
    bad_time = run(server, "events", "create", "--metric", "M", "--email", "a@b.co",
                   "--time", "2026-01-01T00:00:00")  # fmt: skip
    assert bad_time.returncode == 1
    assert "time:" in bad_time.stderr
    assert "timezone" in bad_time.stderr
    campaigns = run(server, "campaigns", "list")
    assert campaigns.returncode == 1
    assert "messages.channel" in campaigns.stderr
    after = httpx.get(f"{server.base_url}/_emulator/stats", timeout=10).json()["requests"]
    assert after == before
    assert "Traceback" not in bad_email.stderr + bad_time.stderr + campaigns.stderr


def test_events_bulk_create_from_jsonl(server: EmulatorServer, tmp_path: Path) -> None:
    lines = [
        json.dumps({"metric": "CLI Bulk", "profile": {"email": f"b{i}@example.com"}, "value": i})
        for i in range(1200)
    ]
    data = tmp_path / "events.jsonl"
    data.write_text("\n".join(lines), encoding="utf-8")
    assert ok_json(run(server, "events", "bulk-create", "--file", str(data))) == {"sent": 1200}


def test_subscribe_from_options(server: EmulatorServer) -> None:
    result = run(
        server, "subscriptions", "subscribe", "--profile", "s1@example.com",
        "--profile", "+15005550123", "--channel", "email", "--channel", "sms",
    )  # fmt: skip
    assert ok_json(result) == {"sent": 2}


def test_raw_request_with_query_data_and_retries(server: EmulatorServer, tmp_path: Path) -> None:
    got = ok_json(
        run(server, "raw", "GET", "/api/accounts", "--query", "fields[account]=timezone",
            "--retries", "5", "--backoff", "exponential")
    )  # fmt: skip
    assert isinstance(got, dict)
    assert set(got["data"][0]["attributes"]) == {"timezone"}
    body = tmp_path / "list.json"
    body.write_text(json.dumps({"data": {"type": "list", "attributes": {"name": "Raw list"}}}))
    made = ok_json(run(server, "raw", "POST", "/api/lists", "--data", f"@{body}"))
    assert made["data"]["attributes"]["name"] == "Raw list"  # type: ignore[index]
    bad = run(server, "raw", "GET", "/api/accounts", "--backoff", "linear")
    assert bad.returncode == 1
    assert "--backoff" in bad.stderr


def test_no_credentials_is_one_clear_line() -> None:
    result = run(None, "profiles", "list")
    assert result.returncode == 1
    assert result.stderr.startswith("error: no credentials: pass --api-key")


def test_help_lists_resources_and_action_scopes() -> None:
    top = run(None, "--help")
    for group in ("profiles", "lists", "campaigns", "templates", "raw"):
        assert group in top.stdout
    detail = run(None, "lists", "add-profiles", "--help")
    assert "lists:write" in detail.stdout
    assert "--profile-id" in detail.stdout


def test_a_saved_connection_supplies_key_and_base_url(
    server: EmulatorServer, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KLAVIYO_", "KBRIDGE_"))}
    env.update({"NO_COLOR": "1", "COLUMNS": "200", "KBRIDGE_HOME": str(tmp_path)})

    def kb(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [KBRIDGE, *args], capture_output=True, text=True, check=False, env=env, timeout=60
        )

    saved = kb("connect", "shop", "--api-key", server.api_key, "--base-url", server.base_url)
    assert saved.returncode == 0, saved.stderr
    listed = kb("accounts", "list", "--connection", "shop", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)[0]["type"] == "account"
    both = kb("accounts", "list", "--connection", "shop", "--api-key", server.api_key)
    assert both.returncode == 1
    assert "not both" in both.stderr
    unknown = kb("accounts", "list", "--connection", "nope")
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("error:")
    assert "Traceback" not in unknown.stderr
