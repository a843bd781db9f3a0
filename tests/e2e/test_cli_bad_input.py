"""Foreseeable bad input through the real console script: one line, non-zero exit, no traceback."""

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
        EmulatorConfig(seed=5, profiles=5, events=10, rate_limit_factor=None)
    ) as running:
        yield running


@pytest.fixture(scope="module")
def latin1_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("html") / "café.html"
    path.write_bytes("<p>Café crème</p>".encode("latin-1"))
    return path


def run(server: EmulatorServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KLAVIYO_", "KBRIDGE_"))}
    env.update(
        {
            "NO_COLOR": "1",
            "COLUMNS": "200",
            "KLAVIYO_BASE_URL": server.base_url,
            "KLAVIYO_API_KEY": server.api_key,
        }
    )
    return subprocess.run(
        [KBRIDGE, *args], capture_output=True, text=True, check=False, env=env, timeout=60
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("profiles", "create", "--email", "a@x.co", "--properties", "[1,2]"), "properties"),
        (("profiles", "create", "--email", "a@x.co", "--location", "[1]"), "location"),
        (("profiles", "create", "--email", "a@x.co", "--location", '"paris"'), "location"),
        (
            ("events", "create", "--metric", "Viewed", "--email", "a@x.co", "--properties", "[1]"),
            "properties",
        ),
        (("profiles", "update", "01HXXXXXXXXXXXXXXXXXXXXXXX", "--properties", "5"), "properties"),
        (("templates", "render", "T1", "--context", "[1]"), "context"),
    ],
)
def test_json_options_that_must_be_objects(
    server: EmulatorServer, args: tuple[str, ...], expected: str
) -> None:
    line = one_line_error(run(server, *args))
    assert expected in line
    assert "JSON object" in line
    assert "unknown key" not in line  # '"paris"' is not read as the keys p, a, r, i, s


def test_templates_push_with_a_latin1_file(server: EmulatorServer, latin1_html: Path) -> None:
    line = one_line_error(run(server, "templates", "push", str(latin1_html)))
    assert "UTF-8" in line
    assert latin1_html.name in line


def test_templates_create_with_a_latin1_file(server: EmulatorServer, latin1_html: Path) -> None:
    line = one_line_error(
        run(server, "templates", "create", "--name", "x", "--html-file", str(latin1_html))
    )
    assert "UTF-8" in line


def test_campaigns_publish_with_a_latin1_file(server: EmulatorServer, latin1_html: Path) -> None:
    line = one_line_error(
        run(
            server, "campaigns", "publish", "--name", "c", "--list", "L1", "--subject", "s",
            "--from-email", "a@x.co", "--from-label", "A", "--send-at", "now",
            "--html-file", str(latin1_html),
        )
    )  # fmt: skip
    assert "UTF-8" in line


def test_a_409_names_the_existing_profile_without_debug(server: EmulatorServer) -> None:
    first = run(server, "profiles", "create", "--email", "twice@x.co", "-o", "json")
    assert first.returncode == 0, first.stderr
    existing = json.loads(first.stdout)["id"]
    line = one_line_error(run(server, "profiles", "create", "--email", "twice@x.co"))
    assert "409" in line
    assert f"existing profile {existing}" in line


def test_a_write_cut_off_after_sending_may_have_happened(server: EmulatorServer) -> None:
    faults = f"{server.base_url}/_emulator/faults"
    httpx.post(faults, json={"spec": "truncate=1"}, timeout=10).raise_for_status()
    try:
        line = one_line_error(run(server, "lists", "create", "--name", "Cut off"))
    finally:
        httpx.post(faults, json={"spec": "off"}, timeout=10).raise_for_status()
    assert "may have reached Klaviyo; check before retrying" in line
    # ... and it did: the list exists although its answer never arrived
    made = run(server, "lists", "list", "--filter", "any(name,['Cut off'])", "-o", "json")
    assert [r["attributes"]["name"] for r in json.loads(made.stdout)] == ["Cut off"]


def test_a_read_cut_off_is_not_called_a_possible_write(server: EmulatorServer) -> None:
    faults = f"{server.base_url}/_emulator/faults"
    httpx.post(faults, json={"spec": "reset=1"}, timeout=10).raise_for_status()
    try:
        result = run(server, "lists", "list", "-o", "json")
    finally:
        httpx.post(faults, json={"spec": "off"}, timeout=10).raise_for_status()
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "may have reached Klaviyo" not in result.stderr


def test_sync_to_a_relative_path_that_looks_absolute(
    server: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./tmp here: duckdb:///tmp/… cannot be created
    line = one_line_error(
        run(server, "sync", "--to", "duckdb:///tmp/kb.duckdb", "--streams", "lists")
    )
    assert "use duckdb:////tmp/kb.duckdb for /tmp/kb.duckdb" in line
