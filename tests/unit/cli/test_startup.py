"""``kbridge --help`` imports no command module: each is imported when its command runs.

The guard is on *what* is imported (``sys.modules`` in a fresh interpreter),
never on how long it takes; ``python -m benchmarks.startup`` prints the times.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from kbridge.cli.app import LAZY_COMMANDS, app, load_command

pytestmark = pytest.mark.unit

#: what made start-up cost most of a second; none of it is needed to list the commands
HEAVY = (
    "kbridge.api",
    "kbridge.api.client",
    "kbridge.api.actions",
    "kbridge.catalog",
    "kbridge.catalog._operations",
    "kbridge.cli.actions",
    "kbridge.cli.campaigns",
    "kbridge.cli.demo",
    "kbridge.cli.sync",
    "kbridge.cli.analytics",
    "kbridge.emulator",
    "kbridge.sync",
    "kbridge.warehouse",
    "kbridge.analytics",
    "httpx",
    "duckdb",
    "asyncio",
    "pydantic",
)


def _modules_after(code: str) -> set[str]:
    probe = (
        f"import json, sys\n{code}\nsys.__stdout__.write('\\n' + json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_importing_the_app_imports_no_command_module() -> None:
    loaded = _modules_after("import kbridge.cli.app")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_help_lists_every_command_without_importing_them() -> None:
    code = (
        "from kbridge.cli.app import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
    )
    loaded = _modules_after(code)
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_profiles_list_loads_the_actions_but_not_the_workflows() -> None:
    code = (
        "from kbridge.cli.app import main\n"
        "try:\n"
        "    main(['profiles', 'list', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
    )
    loaded = _modules_after(code)
    assert "kbridge.api.actions" in loaded
    unneeded = {"kbridge.cli.campaigns", "kbridge.cli.demo", "kbridge.emulator", "duckdb"}
    assert not loaded & unneeded, sorted(loaded & unneeded)


def test_help_shows_every_command_with_its_help() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    for name, (_, short_help) in LAZY_COMMANDS.items():
        # the row whose first word is the command (`disconnect`'s help says "tokens")
        line = next((ln for ln in result.output.splitlines() if ln.split()[1:2] == [name]), "")
        assert short_help in line, (name, line)


@pytest.mark.parametrize("name", [n for n, (target, _) in LAZY_COMMANDS.items() if target])
def test_the_help_table_matches_each_real_command(name: str) -> None:
    # the table is a copy kept for speed: a command whose docstring changed must change it too
    command = load_command(name)
    real = inspect.cleandoc(command.help or "").split("\n\n")[0].replace("\n", " ")
    assert LAZY_COMMANDS[name][1] == real, f"update LAZY_COMMANDS[{name!r}] in cli/app.py"


@pytest.mark.parametrize("name", ["catalog", "profiles", "campaigns", "sync", "connections"])
def test_a_lazy_command_runs_as_before(name: str) -> None:
    result = CliRunner().invoke(app, [name, "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "Usage: kbridge " + name in " ".join(result.output.split())
