"""Start-up of the ``kbridge`` console script, beside the floor of starting Python at all.

Each command runs ``--runs`` times in a fresh process (the console script in
this virtualenv); the table gives the median wall time and the median CPU
(user + system) of the child. ``profiles list`` runs for real against a
fresh emulator over loopback (``--limit 1``: one small request), so its
figure is start-up plus one round trip. Bytecode caches are written by an
uncounted first run, as an installation has them. The ceiling is the issue's target
(0.3 s for ``--help`` and ``profiles list``); ``python -c pass`` is the floor
no command can beat, and ``import typer, rich, httpx`` what the libraries
every command uses cost by themselves.

Usage: python -m benchmarks.startup [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from kbridge.emulator.config import EmulatorConfig
from kbridge.emulator.server import EmulatorServer

_BIN = Path(sys.executable).parent
_KBRIDGE = str(_BIN / "kbridge")


def _measure(argv: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    walls: list[float] = []
    cpus: list[float] = []
    # a first run writes the bytecode caches a user's installation has; it is not counted
    subprocess.run(argv, env=env, capture_output=True, check=False)
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, check=False)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(
            (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        )
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.decode()[-500:]}")
    return statistics.median(walls), statistics.median(cpus)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)

    config = EmulatorConfig(seed=7, profiles=50, events=200, rate_limit_factor=None)
    with EmulatorServer(config) as server:
        env = {
            **os.environ,
            "KLAVIYO_API_KEY": server.api_key,
            "KLAVIYO_BASE_URL": server.base_url,
            "COLUMNS": "120",
        }
        # measured as installed: with bytecode caches (a developer's shell may turn them off)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        rows: list[tuple[str, list[str], str]] = [
            ("python -c pass (the floor)", [sys.executable, "-c", "pass"], ""),
            (
                "python -c 'import typer, rich, httpx'",
                [sys.executable, "-c", "import typer, rich, httpx"],
                "",
            ),
            ("kbridge --help", [_KBRIDGE, "--help"], "0.30"),
            ("kbridge profiles list --help", [_KBRIDGE, "profiles", "list", "--help"], "0.30"),
            (
                "kbridge profiles list --limit 1 (emulator)",
                [_KBRIDGE, "profiles", "list", "--limit", "1", "-o", "json"],
                "0.30",
            ),
            ("kbridge sync --help", [_KBRIDGE, "sync", "--help"], ""),
        ]
        table = Table(title=f"kbridge start-up (median of {args.runs} runs, fresh processes)")
        for col in ("command", "wall s", "CPU s", "ceiling s"):
            table.add_column(col, justify="left" if col == "command" else "right")
        for label, command, ceiling in rows:
            wall, cpu = _measure(command, env, args.runs)
            table.add_row(label, f"{wall:.3f}", f"{cpu:.3f}", ceiling)
    Console(width=110).print(table)


if __name__ == "__main__":
    main()
