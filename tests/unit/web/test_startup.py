"""The service's CLI commands keep `kbridge --help` free of the web stack and SQLAlchemy."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

# (not pydantic: Typer itself imports it while building any command's parameters)
SERVICE_STACK = ("fastapi", "starlette", "sqlalchemy", "alembic", "kbridge.web", "kbridge.service")


def _modules_after(argv: list[str]) -> set[str]:
    probe = (
        "import json, sys\n"
        "from kbridge.cli.app import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.__stdout__.write('\\n' + json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize(
    "argv", [["--help"], ["workspaces", "--help"], ["tokens", "add", "--help"]]
)
def test_help_imports_neither_the_web_stack_nor_the_app_database(argv: list[str]) -> None:
    loaded = _modules_after(argv)
    assert not loaded & set(SERVICE_STACK), sorted(loaded & set(SERVICE_STACK))
