"""Issue 17 item 9: oversized bodies are refused unread; slow headers are timed out.

The memory test runs ``kbridge emulator serve`` as its own process and reads
that process's peak resident set from ``/proc``: whatever the test itself
allocates cannot hide or inflate it.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kbridge.emulator import EmulatorConfig, EmulatorServer

pytestmark = pytest.mark.integration

KBRIDGE = str(Path(sys.executable).with_name("kbridge"))
_STARTUP = 60.0
_ATTACK = 50 * 1024 * 1024
#: the emulator may buffer one capped body, never the 50 MB
_GROWTH_CEILING = 8 * 1024 * 1024
_PATHS = ["/oauth/token", "/_emulator/faults"]


def _peak_rss(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    assert match, status
    return int(match[1]) * 1024


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[int, int]]:
    """(pid, port) of a real ``kbridge emulator serve`` process."""
    proc = subprocess.Popen(
        [KBRIDGE, "emulator", "serve", "--port", "0", "--profiles", "0", "--events", "0",
         "--rate-limits", "off"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    watchdog = threading.Timer(_STARTUP, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout is not None
        url = re.search(r"http://127\.0\.0\.1:(\d+)", proc.stdout.readline())
        assert url
        watchdog.cancel()
        port = int(url[1])
        # warm every code path once, so the baseline includes their imports
        for path in _PATHS:
            httpx.post(f"http://127.0.0.1:{port}{path}", json={})
        yield proc.pid, port
    finally:
        watchdog.cancel()
        assert proc.stdout is not None
        proc.terminate()
        proc.wait(timeout=30)
        proc.stdout.close()


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=60)


def _head(path: str, port: int, framing: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\n{framing}\r\n\r\n"
    ).encode()


def _status_of(sock: socket.socket) -> int | None:
    """The response's status code, or None when the server closed without one."""
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    match = re.match(rb"HTTP/1\.1 (\d{3}) ", data)
    return int(match[1]) if match else None


@pytest.mark.parametrize("path", _PATHS)
def test_a_declared_50_mb_body_is_refused_before_it_is_read(
    served: tuple[int, int], path: str
) -> None:
    pid, port = served
    before = _peak_rss(pid)
    with _connect(port) as sock:
        sock.sendall(_head(path, port, f"Content-Length: {_ATTACK}"))
        # nothing of the body was sent: the answer must not wait for it
        assert _status_of(sock) == 413
    assert _peak_rss(pid) - before < _GROWTH_CEILING


@pytest.mark.parametrize("path", _PATHS)
def test_a_streamed_50_mb_body_is_cut_off_at_the_cap(served: tuple[int, int], path: str) -> None:
    pid, port = served
    before = _peak_rss(pid)
    chunk = b"x" * 65536
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    statuses: list[int | None] = []
    with _connect(port) as sock:
        sock.sendall(_head(path, port, "Transfer-Encoding: chunked"))
        reader = threading.Thread(target=lambda: statuses.append(_status_of(sock)))
        reader.start()
        try:
            while sent < _ATTACK:
                sock.sendall(frame)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        reader.join(timeout=60)
    # the server stopped reading and hung up long before the 50 MB were through
    assert sent < _ATTACK
    assert statuses in ([413], [None])
    assert _peak_rss(pid) - before < _GROWTH_CEILING
    # and it still serves
    assert httpx.get(f"http://127.0.0.1:{port}/_emulator/stats").status_code == 200


def test_a_connection_stuck_in_its_header_is_closed() -> None:
    config = EmulatorConfig(profiles=0, events=0, rate_limit_factor=None, header_timeout=0.2)
    with EmulatorServer(config) as server, _connect(server.port) as sock:
        sock.sendall(f"GET /api/accounts HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n".encode())
        # the header never ends; the server must hang up (EOF), not wait forever
        assert sock.recv(4096) == b""


def test_a_header_trickled_byte_by_byte_is_closed() -> None:
    # each byte would reset an idle timer; the header deadline counts from its first byte
    config = EmulatorConfig(profiles=0, events=0, rate_limit_factor=None, header_timeout=0.2)
    closed = threading.Event()
    with EmulatorServer(config) as server, _connect(server.port) as sock:
        sock.sendall(
            f"GET /api/accounts HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nX-A: ".encode()
        )

        def watch() -> None:
            try:
                if sock.recv(4096) == b"":
                    closed.set()
            except OSError:
                closed.set()

        watcher = threading.Thread(target=watch)
        watcher.start()
        tick = threading.Event()
        for _ in range(2000):  # 2000 × 50 ms: the header would outlive any test run
            if closed.is_set():
                break
            try:
                sock.sendall(b"a")
            except OSError:
                break
            tick.wait(0.05)
        watcher.join(timeout=60)
    assert closed.is_set()


def test_a_kept_alive_connection_still_serves_its_next_request() -> None:
    config = EmulatorConfig(profiles=0, events=0, rate_limit_factor=None, header_timeout=5.0)
    with EmulatorServer(config) as server, httpx.Client(base_url=server.base_url) as http:
        assert http.get("/_emulator/stats").status_code == 200
        assert http.get("/_emulator/stats").status_code == 200


def test_a_body_that_stops_arriving_is_given_up_on() -> None:
    # the same hold as a half-sent header, one step later: headers done, body never ends
    config = EmulatorConfig(profiles=0, events=0, rate_limit_factor=None, body_timeout=0.2)
    with EmulatorServer(config) as server, _connect(server.port) as sock:
        sock.sendall(_head("/oauth/token", server.port, "Content-Length: 100") + b"grant")
        assert _status_of(sock) == 408
        while sock.recv(4096):
            pass  # then the server hangs up (recv returns b"")
