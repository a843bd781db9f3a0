"""A throwaway PostgreSQL server for tests: ``initdb`` + ``pg_ctl`` on loopback.

The ``postgres_url`` fixture (session-scoped) creates a cluster in a temporary
directory, starts it on a free port bound to 127.0.0.1 only, and removes it
at the end. PostgreSQL refuses to run as root, so when tests run as root the
server runs as the ``postgres`` system user (Debian's package creates it)
through ``runuser``. Missing binaries are an error naming the package to
install — never a silent skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["PostgresServer", "find_pg_bin", "postgres_server", "postgres_url"]

_SEARCH = ("/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin")


class PostgresUnavailableError(RuntimeError):
    """PostgreSQL's server binaries are not installed, or the server would not start."""


def find_pg_bin() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``."""
    for directory in _SEARCH:
        if (Path(directory) / "initdb").exists():
            return Path(directory)
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise PostgresUnavailableError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's `postgresql` "
        "package (apt-get install postgresql) — `make test` does this when initdb is missing"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class PostgresServer:
    data_dir: Path
    port: int
    user: str

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"


def _run(cmd: list[str], run_as: str | None) -> None:
    full = ["runuser", "-u", run_as, "--", *cmd] if run_as else cmd
    done = subprocess.run(full, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise PostgresUnavailableError(
            f"{Path(cmd[0]).name} failed ({done.returncode}): {done.stderr.strip()[-500:]}"
        )


def start_postgres(base: Path) -> PostgresServer:
    """Create and start a cluster under ``base``; the caller stops it with :func:`stop_postgres`."""
    bin_dir = find_pg_bin()
    run_as = "postgres" if os.geteuid() == 0 else None
    data = base / "data"
    if run_as:
        shutil.chown(base, user=run_as)
    user = run_as or "postgres"
    _run(
        [str(bin_dir / "initdb"), "-D", str(data), "-U", user, "-A", "trust", "-E", "UTF8"], run_as
    )
    port = _free_port()
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off"
    _run(
        [
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            opts,
            "-l",
            str(base / "log"),
            "-w",
            "start",
        ],
        run_as,
    )
    return PostgresServer(data, port, user)


def stop_postgres(server: PostgresServer) -> None:
    run_as = "postgres" if os.geteuid() == 0 else None
    _run(
        [
            str(find_pg_bin() / "pg_ctl"),
            "-D",
            str(server.data_dir),
            "-m",
            "immediate",
            "-w",
            "stop",
        ],
        run_as,
    )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session, on loopback, removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="kbridge-pg-"))
    try:
        server = start_postgres(base)
        try:
            yield server
        finally:
            stop_postgres(server)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database on the session server for this test; its URL."""
    import psycopg

    name = f"t{_free_port()}"
    with psycopg.connect(postgres_server.url, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"'.encode())
    yield postgres_server.url.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(postgres_server.url, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
