"""`kbridge workspaces add` and `kbridge tokens add`, run as a user would: the token works."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from kbridge.service.appdb import TOKEN_PREFIX, AppDatabase
from kbridge.service.db import database_url
from kbridge.web import create_app
from tests.integration.web.conftest import serve

pytestmark = pytest.mark.e2e

KBRIDGE = str(Path(sys.executable).with_name("kbridge"))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KBRIDGE_", "KLAVIYO_"))}
    return {**clean, "NO_COLOR": "1", "COLUMNS": "200", "KBRIDGE_HOME": str(tmp_path / "home")}


def kbridge(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KBRIDGE, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def accepted(url: str, data_dir: Path, token: str) -> int:
    """The status the API over app database ``url`` answers ``token`` with."""
    appdb = AppDatabase.open(url)
    try:
        # no master key given: the key file in the data directory, made on first use
        app = create_app(appdb, data_dir=data_dir)
        with serve(app) as base_url:
            reply = httpx.get(
                f"{base_url}/api/v1/connections",
                headers={"Authorization": f"Bearer {token}"},
                timeout=30.0,
            )
    finally:
        appdb.close()
    return reply.status_code


def test_a_token_made_on_the_embedded_database_is_accepted_by_the_api(
    env: dict[str, str],
) -> None:
    added = kbridge(env, "workspaces", "add", "acme")
    assert added.returncode == 0, added.stderr
    assert "acme" in added.stdout
    made = kbridge(env, "tokens", "add", "--workspace", "acme")
    assert made.returncode == 0, made.stderr
    token = made.stdout.removesuffix("\n")
    assert made.stdout == token + "\n"  # the token alone, so `$(kbridge tokens add …)` works
    assert token.startswith(TOKEN_PREFIX)
    assert "\n" not in token
    home = Path(env["KBRIDGE_HOME"])
    assert (home / "app.sqlite3").exists()  # the embedded default, where `serve` looks
    assert token.encode() not in (home / "app.sqlite3").read_bytes()  # stored hashed only
    second = kbridge(env, "tokens", "add", "--workspace", "acme").stdout.strip()
    assert second != token

    url = database_url(home)
    assert accepted(url, home, token) == 200
    assert accepted(url, home, second) == 200
    assert accepted(url, home, token[:-2] + "xx") == 401
    assert (home / "master.key").stat().st_mode & 0o777 == 0o600


def test_a_token_made_on_a_postgresql_database_is_accepted(
    env: dict[str, str], postgres_url: str, tmp_path: Path
) -> None:
    assert kbridge(env, "workspaces", "add", "acme", "--database", postgres_url).returncode == 0
    made = kbridge(env, "tokens", "add", "--workspace", "acme", "--database", postgres_url)
    assert made.returncode == 0, made.stderr
    assert accepted(postgres_url, tmp_path, made.stdout.strip()) == 200
    assert not (Path(env["KBRIDGE_HOME"]) / "app.sqlite3").exists()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["tokens", "add", "--workspace", "nobody"], "no workspace called 'nobody'"),
        (["workspaces", "add", "acme", "--database", "mysql://x/y"], "SQLite or PostgreSQL"),
    ],
)
def test_mistakes_are_one_line_on_stderr_and_nothing_on_stdout(
    env: dict[str, str], args: list[str], says: str
) -> None:
    done = kbridge(env, *args)
    assert done.returncode == 1
    assert done.stdout == ""
    assert says in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_workspace_name_is_taken_once(env: dict[str, str]) -> None:
    assert kbridge(env, "workspaces", "add", "acme").returncode == 0
    again = kbridge(env, "workspaces", "add", "acme")
    assert again.returncode == 1
    assert "already exists" in again.stderr
