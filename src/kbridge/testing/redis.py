"""A throwaway Redis server for tests: Debian's ``redis-server`` on loopback.

The ``redis_server`` fixture starts one on a free port bound to 127.0.0.1,
with no persistence (``--save "" --appendonly no``), and stops it at the
end; :meth:`RedisServer.restart` stops and starts it on the same port (the
fault tests). A missing binary is an error naming the package to install,
never a silent skip.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["RedisServer", "find_redis_server", "redis_server", "redis_url"]


class RedisUnavailableError(RuntimeError):
    """``redis-server`` is not installed, or it would not start."""


def find_redis_server() -> Path:
    """The ``redis-server`` binary."""
    for candidate in ("/usr/bin/redis-server", shutil.which("redis-server")):
        if candidate and Path(candidate).exists():
            return Path(candidate)
    raise RedisUnavailableError(
        "redis-server not found: install Debian's `redis-server` package "
        "(apt-get install redis-server) — `make test` does this when it is missing"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One ``redis-server`` process on loopback; :attr:`url` reaches it."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = _free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [
            str(find_redis_server()),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.base),
            "--logfile",
            str(self.base / "log"),
        ]
        self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL)  # noqa: S603
        # polling a TCP connect is how a server says it is up; this is setup, not an assertion
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        log = (self.base / "log").read_text() if (self.base / "log").exists() else ""
        self.stop()
        raise RedisUnavailableError(f"redis-server did not start: {log.strip()[-500:]}")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def restart(self) -> None:
        """Stop, then start on the same port: everything in memory is gone, as after a crash."""
        self.stop()
        self.start()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A Redis server for the whole session, on loopback, without persistence."""
    base = Path(tempfile.mkdtemp(prefix="kbridge-redis-"))
    server = RedisServer(base)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session server's URL, emptied for this test."""
    import redis

    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    return redis_server.url
