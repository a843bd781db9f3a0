"""The same option means the same thing everywhere: ``-o json`` on every list command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kbridge.api import actions
from kbridge.emulator import EmulatorConfig, EmulatorServer

pytestmark = pytest.mark.e2e

KBRIDGE = str(Path(sys.executable).with_name("kbridge"))


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(
        EmulatorConfig(seed=31, profiles=40, events=400, rate_limit_factor=None)
    ) as running:
        yield running


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


def run(
    server: EmulatorServer, home: Path, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KLAVIYO_", "KBRIDGE_"))}
    env.update(
        {
            "NO_COLOR": "1",
            "COLUMNS": "200",
            "KBRIDGE_HOME": str(home),
            "KLAVIYO_BASE_URL": server.base_url,
            "KLAVIYO_API_KEY": server.api_key,
        }
    )
    return subprocess.run(
        [KBRIDGE, *args], capture_output=True, text=True, check=False, env=env, timeout=120,
        cwd=cwd,
    )  # fmt: skip


def parsed(result: subprocess.CompletedProcess[str]) -> object:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


#: list commands that need more than their name (campaigns: a channel)
_EXTRA = {"campaigns list": ("--channel", "email")}
LIST_COMMANDS = sorted(
    name
    for name, action in actions.registry().items()
    if action.kind == "list" and not any(p.argument for p in action.params)
)


@pytest.mark.parametrize("command", LIST_COMMANDS)
def test_every_list_command_prints_json_with_o_json(
    server: EmulatorServer, home: Path, command: str
) -> None:
    args = (*command.split(), *_EXTRA.get(command, ()), "--limit", "3", "-o", "json")
    rows = parsed(run(server, home, *args))
    assert isinstance(rows, list)
    assert all(isinstance(r, dict) and "id" in r for r in rows)


def test_connections_take_o_json_and_keep_json_as_a_hidden_alias(
    server: EmulatorServer, home: Path
) -> None:
    connected = run(server, home, "connect", "shop", "--api-key", server.api_key,
                    "--base-url", server.base_url)  # fmt: skip
    assert connected.returncode == 0, connected.stderr
    listed = parsed(run(server, home, "connections", "list", "-o", "json"))
    assert [c["name"] for c in listed] == ["shop"]  # type: ignore[union-attr]
    assert parsed(run(server, home, "connections", "list", "--json")) == listed
    shown = parsed(run(server, home, "connections", "show", "shop", "--output", "json"))
    assert shown["name"] == "shop"  # type: ignore[index]
    table = run(server, home, "connections", "list", "-o", "table")
    assert table.returncode == 0
    assert "shop" in table.stdout
    help_text = run(server, home, "connections", "list", "--help").stdout
    assert "--output" in help_text
    assert "--json" not in help_text


def test_sync_takes_o_json_and_keeps_json(
    server: EmulatorServer, home: Path, tmp_path: Path
) -> None:
    target = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    base = ("sync", "--to", target, "--streams", "lists", "--rate-limits", "off")
    summary = parsed(run(server, home, *base, "-o", "json"))
    assert isinstance(summary, dict)
    assert [s["stream"] for s in summary["streams"]] == ["lists"]
    again = parsed(run(server, home, *base, "--json"))
    assert again["account_id"] == summary["account_id"]  # type: ignore[index]
    assert "--json" not in run(server, home, "sync", "--help").stdout


def test_profiles_upsert_creates_then_updates_the_same_profile(
    server: EmulatorServer, home: Path
) -> None:
    made = parsed(run(server, home, "profiles", "upsert", "--email", "Up@Example.com",
                      "--first-name", "Ada", "-o", "json"))  # fmt: skip
    assert isinstance(made, dict)
    again = parsed(run(server, home, "profiles", "upsert", "--email", "up@example.com",
                       "--last-name", "Lovelace", "--properties", '{"tier": "gold"}',
                       "-o", "json"))  # fmt: skip
    assert isinstance(again, dict)
    assert again["id"] == made["id"]  # no 409: the existing person was updated
    attrs = again["attributes"]
    assert (attrs["first_name"], attrs["last_name"]) == ("Ada", "Lovelace")
    assert attrs["properties"] == {"tier": "gold"}
    found = parsed(run(server, home, "profiles", "list", "--filter",
                       "equals(email,'up@example.com')", "-o", "json"))  # fmt: skip
    assert [p["id"] for p in found] == [made["id"]]  # type: ignore[union-attr]


def test_lists_add_and_remove_profiles_by_email(server: EmulatorServer, home: Path) -> None:
    people = []
    for email in ("one@example.com", "two@example.com"):
        made = parsed(run(server, home, "profiles", "upsert", "--email", email, "-o", "json"))
        people.append(made["id"])  # type: ignore[index]
    made_list = parsed(run(server, home, "lists", "create", "--name", "By email", "-o", "json"))
    list_id = made_list["id"]  # type: ignore[index]
    added = parsed(run(server, home, "lists", "add-profiles", list_id, "--email",
                       "ONE@example.com", "--email", "two@example.com", "-o", "json"))  # fmt: skip
    assert added == {"sent": 2}
    members = parsed(run(server, home, "lists", "profiles", list_id, "-o", "json"))
    assert sorted(m["id"] for m in members) == sorted(people)  # type: ignore[union-attr]

    unknown = run(server, home, "lists", "add-profiles", list_id, "--email", "nobody@example.com",
                  "--email", "one@example.com")  # fmt: skip
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == (
        "error: email: no profile has the email nobody@example.com; "
        "create it first (profiles upsert)"
    )
    neither = run(server, home, "lists", "add-profiles", list_id)
    assert neither.returncode == 1
    assert "give --profile-id ID or --email ADDRESS" in neither.stderr

    removed = parsed(run(server, home, "lists", "remove-profiles", list_id,
                         "--email", "one@example.com", "-o", "json"))  # fmt: skip
    assert removed == {"sent": 1}
    members = parsed(run(server, home, "lists", "profiles", list_id, "-o", "json"))
    assert [m["id"] for m in members] == [people[1]]  # type: ignore[union-attr]
