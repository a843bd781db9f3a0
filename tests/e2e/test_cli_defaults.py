"""A default connection and warehouse (``kbridge config``, ``KBRIDGE_CONNECTION``,
``KBRIDGE_WAREHOUSE``) and shell completion, through the real console script.

Precedence for each: flag, then environment, then the saved file. Which one a
command used is read off what it did: a saved connection that exists lists
profiles, a name that does not is named in the one-line error.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kbridge.emulator import EmulatorConfig, EmulatorServer

pytestmark = pytest.mark.e2e

KBRIDGE = str(Path(sys.executable).with_name("kbridge"))


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(
        EmulatorConfig(seed=31, profiles=20, events=40, rate_limit_factor=None)
    ) as s:
        yield s


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KBRIDGE_", "KLAVIYO_"))}
    return {
        **clean,
        "NO_COLOR": "1",
        "COLUMNS": "200",
        "KBRIDGE_HOME": str(tmp_path / "home"),
        "HOME": str(tmp_path),
    }


def run(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KBRIDGE, *args], capture_output=True, text=True, check=False, env=env, timeout=120, cwd=cwd
    )


def one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 1, result.stdout
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


@pytest.fixture
def shop(server: EmulatorServer, env: dict[str, str]) -> str:
    done = run(env, "connect", "shop", "--api-key", server.api_key, "--base-url", server.base_url)
    assert done.returncode == 0, done.stderr
    return "shop"


def listed(result: subprocess.CompletedProcess[str]) -> bool:
    return result.returncode == 0 and '"type":"profile"' in result.stdout.replace(" ", "")


LIST = ("profiles", "list", "--limit", "1", "-o", "json")


def test_without_any_connection_one_line_names_every_way_to_give_one(env: dict[str, str]) -> None:
    one_line_error(
        run(env, *LIST), "--connection", "KBRIDGE_CONNECTION", "kbridge config set connection"
    )


def test_saved_connection_is_used_and_env_then_flag_beat_it(
    server: EmulatorServer, env: dict[str, str], shop: str
) -> None:
    saved = run(env, "config", "set", "connection", shop)
    assert saved.returncode == 0, saved.stderr
    assert listed(run(env, *LIST))
    # the environment beats the file
    env_missing = {**env, "KBRIDGE_CONNECTION": "nosuch"}
    one_line_error(run(env_missing, *LIST), "nosuch")
    # a flag beats the environment
    assert listed(run(env_missing, *LIST, "--connection", shop))
    # a key in the environment beats the saved connection too
    run(env, "config", "set", "connection", "nosuch")
    keyed = {**env, "KLAVIYO_API_KEY": server.api_key, "KLAVIYO_BASE_URL": server.base_url}
    assert listed(run(keyed, *LIST))
    one_line_error(run(env, *LIST), "nosuch")


def test_env_connection_beats_an_api_key_in_the_environment(
    server: EmulatorServer, env: dict[str, str], shop: str
) -> None:
    both = {**env, "KLAVIYO_API_KEY": "pk_" + "x" * 34, "KBRIDGE_CONNECTION": shop}
    assert listed(run(both, *LIST))


def test_warehouse_precedence_flag_env_file_builtin(env: dict[str, str], tmp_path: Path) -> None:
    def used(extra_env: dict[str, str], *flags: str) -> str:
        result = run({**env, **extra_env}, "analytics", "lifecycle", *flags, cwd=tmp_path)
        assert result.returncode == 1, result.stderr
        assert "no warehouse at " in result.stderr, result.stderr
        return result.stderr.split("no warehouse at ", 1)[1].split(":", 1)[0]

    assert used({}) == "./kbridge.duckdb"
    assert run(env, "config", "set", "warehouse", "duckdb:///saved.duckdb").returncode == 0
    assert used({}) == "saved.duckdb"
    assert used({"KBRIDGE_WAREHOUSE": "duckdb:///from-env.duckdb"}) == "from-env.duckdb"
    assert (
        used({"KBRIDGE_WAREHOUSE": "duckdb:///from-env.duckdb"}, "--from", "duckdb:///flag.duckdb")
        == "flag.duckdb"
    )
    shown = run(env, "config", "show")
    assert "warehouse: duckdb:///saved.duckdb" in shown.stdout
    one_line_error(run(env, "config", "set", "warehouse", "kb.duckdb"), "not a warehouse URL")


def test_sync_writes_to_the_saved_warehouse(
    server: EmulatorServer, env: dict[str, str], shop: str, tmp_path: Path
) -> None:
    target = tmp_path / "default.duckdb"
    run(env, "config", "set", "connection", shop)
    run(env, "config", "set", "warehouse", f"duckdb:///{target}")
    synced = run(env, "sync", "--streams", "metrics", "--rate-limits", "off", "--json")
    assert synced.returncode == 0, synced.stderr
    assert target.exists()
    assert not (tmp_path / "kbridge.duckdb").exists()


def test_a_malformed_config_file_is_one_line(env: dict[str, str]) -> None:
    home = Path(env["KBRIDGE_HOME"])
    home.mkdir(parents=True)
    (home / "config.toml").write_text("connection = [", encoding="utf-8")
    one_line_error(run(env, *LIST), "config.toml is not valid TOML")
    one_line_error(run(env, "sync"), "config.toml is not valid TOML")
    one_line_error(run(env, "config", "show"), "config.toml is not valid TOML")


def from_bash(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``kbridge ARGS`` as a child of bash: completion detects the shell from its parent
    process (a test run started outside a shell found none: "Shell  not supported")."""
    script = '"$0" "$@"; exit $?'  # not the last command alone, which bash would exec
    return subprocess.run(
        ["bash", "-c", script, KBRIDGE, *args],
        capture_output=True, text=True, check=False, env=env, timeout=120,
    )  # fmt: skip


def test_shell_completion_installs_and_completes_lazy_commands(env: dict[str, str]) -> None:
    shown = from_bash(env, "--show-completion")
    assert shown.returncode == 0, shown.stderr
    assert "_KBRIDGE_COMPLETE" in shown.stdout
    installed = from_bash(env, "--install-completion")
    assert installed.returncode == 0, installed.stderr
    assert "kbridge" in (Path(env["HOME"]) / ".bashrc").read_text(encoding="utf-8")

    def complete(words: str) -> list[str]:
        cword = str(len(words.split()) - 1)
        extra = {"_KBRIDGE_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": cword}
        done = run({**env, **extra})
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert "profiles" in complete("kbridge prof")
    assert "list" in complete("kbridge profiles li")
    assert "set" in complete("kbridge config s")
