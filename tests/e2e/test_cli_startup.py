"""A real ``kbridge profiles list`` against the emulator imports only what it uses.

The start-up budget (#18 item 11) is kept by *what* a command imports, checked
here in a fresh interpreter running the CLI's entry point against the emulator
over loopback; ``python -m benchmarks.startup`` prints the times.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kbridge.emulator import EmulatorConfig, EmulatorServer

pytestmark = pytest.mark.e2e

#: nothing a list command printing JSON needs: the databases, the servers, the sync
#: engine, typer's pydantic adapters, httpx's command line, anyio's backend, rich, tomllib
NEVER_FOR_A_LIST = (
    "sqlalchemy",
    "alembic",
    "duckdb",
    "fastapi",
    "starlette",
    "redis",
    "pydantic",
    "click",
    "pygments",
    "anyio._backends",
    "rich",
    "tomllib",
    "kbridge.emulator",
    "kbridge.sync",
    "kbridge.warehouse",
    "kbridge.service",
    "kbridge.cli.campaigns",
)

PROBE = """
import json, sys
from kbridge.cli.app import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    assert not exc.code, exc.code
sys.stderr.write(json.dumps(sorted(sys.modules)))
"""


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(
        EmulatorConfig(seed=3, profiles=5, events=10, rate_limit_factor=None)
    ) as running:
        yield running


def test_a_list_imports_nothing_it_does_not_use(server: EmulatorServer, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KBRIDGE_", "KLAVIYO_"))}
    env.update(
        KBRIDGE_HOME=str(tmp_path),  # no config.toml there
        KLAVIYO_API_KEY=server.api_key,
        KLAVIYO_BASE_URL=server.base_url,
    )
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "profiles", "list", "--limit", "2", "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    profiles = json.loads(done.stdout)
    assert [p["type"] for p in profiles] == ["profile", "profile"]
    loaded = set(json.loads(done.stderr.splitlines()[-1]))
    heavy = {m for m in loaded for h in NEVER_FOR_A_LIST if m == h or m.startswith(h + ".")}
    assert not heavy, sorted(heavy)
