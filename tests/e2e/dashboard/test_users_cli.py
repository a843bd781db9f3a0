"""`kbridge users add`, run as an operator would: the password comes from stdin and signs in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kbridge.service.appdb import AppDatabase
from kbridge.service.db import database_url
from kbridge.service.users import check_password

pytestmark = pytest.mark.e2e

KBRIDGE = str(Path(sys.executable).with_name("kbridge"))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KBRIDGE_", "KLAVIYO_"))}
    return {**clean, "NO_COLOR": "1", "COLUMNS": "200", "KBRIDGE_HOME": str(tmp_path / "home")}


def kbridge(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KBRIDGE, *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_users_add_reads_the_password_from_stdin(env: dict[str, str], tmp_path: Path) -> None:
    assert kbridge(env, "workspaces", "add", "acme").returncode == 0
    added = kbridge(
        env,
        "users",
        "add",
        "Ana@Example.com",
        "--workspace",
        "acme",
        "--role",
        "operator",
        stdin="s3cret pass phrase\n",
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "user ana@example.com added to 'acme' as operator"
    assert "s3cret" not in added.stdout + added.stderr
    appdb = AppDatabase.open(database_url(tmp_path / "home"))
    try:
        found = check_password(appdb, "ana@example.com", "s3cret pass phrase")
        assert found is not None
        assert (found.role, found.workspace_name) == ("operator", "acme")
        assert check_password(appdb, "ana@example.com", "s3cret pass phrase\n") is None
    finally:
        appdb.close()
    again = kbridge(
        env, "users", "add", "ana@example.com", "--workspace", "acme", stdin="another one\n"
    )
    assert again.returncode != 0
    assert "already exists" in again.stderr
    assert "Traceback" not in again.stderr


@pytest.mark.parametrize(
    ("args", "stdin", "said"),
    [
        (["--role", "root"], "long enough pw\n", "role: one of admin, operator, viewer"),
        ([], "short\n", "password: at least 8 characters"),
        (["--workspace", "nowhere"], "long enough pw\n", "no workspace called 'nowhere'"),
    ],
)
def test_users_add_refuses_bad_input_in_one_line(
    env: dict[str, str], args: list[str], stdin: str, said: str
) -> None:
    assert kbridge(env, "workspaces", "add", "acme").returncode == 0
    base = ["users", "add", "bo@example.com", "--workspace", "acme"]
    if "--workspace" in args:
        base = base[:3]
    refused = kbridge(env, *base, *args, stdin=stdin)
    assert refused.returncode != 0
    assert said in refused.stderr
    assert "Traceback" not in refused.stderr
