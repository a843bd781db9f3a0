"""``kbridge --help`` imports no command module: each is imported when its command runs.

The guard is on *what* is imported (``sys.modules`` in a fresh interpreter),
never on how long it takes; ``python -m benchmarks.startup`` prints the times.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

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


def _modules_after(code: str, env: dict[str, str] | None = None) -> set[str]:
    probe = (
        f"import json, sys\n{code}\nsys.__stdout__.write('\\n' + json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=env,
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
    assert "kbridge.cli.actions" in loaded
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


#: what no help page needs: the databases, the servers, the sync engine, typer's pydantic
#: adapters, httpx's own command line (click) and, without a config file, tomllib
NEVER_FOR_HELP = (
    "sqlalchemy",
    "alembic",
    "duckdb",
    "fastapi",
    "starlette",
    "redis",
    "pydantic",
    "kbridge.emulator",
    "kbridge.sync",
    "kbridge.warehouse",
    "kbridge.service",
    "click",
    "tomllib",
    # an action's help is built from the registry's snapshot, not the client
    "kbridge.api",
    "httpx",
    "asyncio",
)


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["profiles", "--help"],
        ["profiles", "list", "--help"],
        ["events", "get", "--help"],
    ],
)
def test_help_imports_no_heavy_module(argv: list[str], tmp_path: Path) -> None:
    code = (
        "from kbridge.cli.app import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KBRIDGE_", "KLAVIYO_"))}
    env["KBRIDGE_HOME"] = str(tmp_path)  # no config.toml there
    loaded = _modules_after(code, env)
    heavy = {m for m in loaded if m.split(".")[0] in NEVER_FOR_HELP or m in NEVER_FOR_HELP}
    heavy |= {m for m in loaded for h in NEVER_FOR_HELP if m.startswith(h + ".")}
    heavy.discard("httpx._main")  # the stand-in for httpx's command line (cli/_httpx.py)
    assert not heavy, sorted(heavy)


def test_httpx_command_line_loads_only_when_used() -> None:
    code = (
        "from kbridge.cli._httpx import defer_httpx_cli\n"
        "defer_httpx_cli()\n"
        "import httpx\n"
        "assert 'click' not in sys.modules\n"
        "assert httpx.Client and httpx.AsyncClient\n"
        "try:\n"
        "    httpx.main(['--help'])\n"  # httpx's own command line still works
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "from httpx._main import print_help\n"
        "assert print_help.__module__ == 'httpx._main'\n"
    )
    loaded = _modules_after(code)
    assert "click" in loaded
