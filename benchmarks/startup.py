"""Start-up of the ``kbridge`` console script, beside the floor of starting Python at all.

Each command runs ``--runs`` times in a fresh process (the console script in
this virtualenv); the table gives the median wall time and the median CPU
(user + system) of the child. ``profiles list`` runs for real against a
fresh emulator over loopback (``--limit 1``: one small request), so its
wall time is start-up plus one round trip; its CPU is the client's alone (the
emulator serves from this process, and its work is not counted). Bytecode caches are written by an
uncounted first run, as an installation has them. The ceiling is the issue's target
(0.3 s for ``--help`` and ``profiles list``); ``python -c pass`` is the floor
no command can beat, ``import typer, rich, httpx`` what the libraries
every command uses cost by themselves, and ``import typer, asyncio, httpx``
(without httpx's own command line, as kbridge imports it) what a command
calling Klaviyo cannot avoid.

``--before SRC`` also runs each kbridge command on another source tree (its
``src`` directory, e.g. ``git archive <commit> src | tar -x -C /tmp/old``)
through ``PYTHONPATH``, in the same virtualenv, the two trees taking turns
run by run, and prints its CPU beside this tree's.

Usage: python -m benchmarks.startup [--runs 5] [--before /tmp/old/src]
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
#: what a command calling Klaviyo cannot do without (httpx's own command line aside)
_LIST_FLOOR = (
    "from kbridge.cli._httpx import defer_httpx_cli; defer_httpx_cli(); "
    "import typer, asyncio, httpx"
)


def _run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.decode()[-500:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _measure(argv: list[str], envs: list[dict[str, str]], runs: int) -> list[tuple[float, float]]:
    """(median wall, median CPU) under each environment, the environments taking turns."""
    for env in envs:
        # a first run writes the bytecode caches a user's installation has; it is not counted
        subprocess.run(argv, env=env, capture_output=True, check=False)
    samples: list[list[tuple[float, float]]] = [[] for _ in envs]
    for _ in range(runs):
        for i, env in enumerate(envs):
            samples[i].append(_run_once(argv, env))
    return [
        (statistics.median(w for w, _ in got), statistics.median(c for _, c in got))
        for got in samples
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--before", type=Path, help="another tree's src directory to compare")
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
            (
                "python -c 'import typer, asyncio, httpx' (no httpx CLI)",
                [sys.executable, "-c", _LIST_FLOOR],
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
        envs = [env]
        if args.before is not None:
            envs = [{**env, "PYTHONPATH": str(args.before.resolve())}, env]
        table = Table(title=f"kbridge start-up (median of {args.runs} runs, fresh processes)")
        columns = ["command", "wall s", "CPU s", "ceiling s"]
        if args.before is not None:
            columns.insert(1, "CPU s before")
        for col in columns:
            table.add_column(col, justify="left" if col == "command" else "right")
        for label, command, ceiling in rows:
            is_kbridge = command[0] == _KBRIDGE
            measured = _measure(command, envs if is_kbridge else [env], args.runs)
            wall, cpu = measured[-1]
            cells = [label, f"{wall:.3f}", f"{cpu:.3f}", ceiling]
            if args.before is not None:
                cells.insert(1, f"{measured[0][1]:.3f}" if is_kbridge else "")
            table.add_row(*cells)
    Console(width=110).print(table)


if __name__ == "__main__":
    main()
