"""Serve the emulator over real HTTP (uvicorn): in a background thread, or blocking.

:class:`EmulatorServer` is what tests and benchmarks use::

    with EmulatorServer(EmulatorConfig(profiles=100, events=1000)) as server:
        httpx.get(f"{server.base_url}/api/accounts",
                  headers={"Authorization": f"Klaviyo-API-Key {server.api_key}",
                           "revision": "2026-07-15"})

The listening socket is bound before uvicorn starts, so ``port=0`` yields a
free port that is known at once, and a port in use is a clear
:class:`EmulatorServerError` rather than a log line from a dying thread.

uvicorn's keep-alive timer is restarted by every byte received and is not
armed on a new connection, so a client trickling a header (or sending half of
one) would hold its connection for ever. :class:`_HeaderDeadlineProtocol`
gives every request's header ``config.header_timeout`` seconds from the moment
the server starts waiting for it; bodies are capped by the app's gate.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import socket
import threading
from dataclasses import replace
from types import TracebackType

import h11
import uvicorn
from starlette.applications import Starlette
from uvicorn.protocols.http.h11_impl import H11Protocol

from kbridge.core.errors import KbridgeError
from kbridge.emulator.backend.call import Backend
from kbridge.emulator.config import EmulatorConfig
from kbridge.emulator.http.app import create_app
from kbridge.emulator.http.jobrunner import JobRunner
from kbridge.emulator.http.state import Accounts, EmulatorState

__all__ = [
    "EmulatorServer",
    "EmulatorServerError",
    "bind_socket",
    "check_exposure",
    "serve",
]

_START_TIMEOUT = 30.0


class EmulatorServerError(KbridgeError):
    """The emulator could not start (e.g. its port is taken) or stopped uncleanly."""


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port=0``: any free port)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise EmulatorServerError(f"cannot resolve host {host!r}: {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # uvicorn writes a response's head and body separately; with Nagle on, the
    # body waits for the client's delayed ACK (~40 ms a request on loopback).
    # Accepted connections inherit this option from the listening socket.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise EmulatorServerError(
                f"port {port} on {host} is already in use; pick another with --port "
                "(or 0 for any free port)"
            ) from None
        raise EmulatorServerError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.setblocking(False)
    return sock


def _is_loopback_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve beyond loopback


def check_exposure(host: str, config: EmulatorConfig) -> None:
    """Refuse to listen beyond loopback without an admin token: the control plane mints keys."""
    if config.admin_token is None and not _is_loopback_host(host):
        raise EmulatorServerError(
            f"listening on {host} exposes the control plane (/_emulator mints full-access "
            "keys) beyond this machine; pass --admin-token TOKEN, then send it as "
            "'Authorization: Bearer TOKEN' to /_emulator/..."
        )


class _HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on each request's header."""

    header_timeout: float = 10.0
    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._follow_header()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow_header()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow_header()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _follow_header(self) -> None:
        # IDLE: the next request's line and headers are not complete yet
        waiting = self.conn.their_state is h11.IDLE and not self.transport.is_closing()
        if waiting and self._header_deadline is None:
            self._header_deadline = self.loop.call_later(self.header_timeout, self._expire)
        elif not waiting:
            self._cancel_deadline()

    def _cancel_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _expire(self) -> None:
        self._header_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


async def _serve(server: uvicorn.Server, app: Starlette, sock: socket.socket) -> None:
    """uvicorn, with the app's bulk import runner on the same loop for as long."""
    runner: JobRunner = app.state.job_runner
    task = asyncio.create_task(runner.run(), name="kbridge-emulator-jobs")
    try:
        await server.serve(sockets=[sock])
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def _uvicorn(app: Starlette, header_timeout: float) -> uvicorn.Server:
    protocol = type(
        "EmulatorHTTPProtocol", (_HeaderDeadlineProtocol,), {"header_timeout": header_timeout}
    )
    config = uvicorn.Config(
        app,
        http=protocol,
        log_level="warning",
        access_log=False,
        lifespan="off",
        # one event-loop thread: the backend is single-threaded by design
        workers=1,
        # a backstop: held fault requests are released on stop(), but a Ctrl-C of
        # `kbridge emulator serve` must not wait on a client that never hangs up
        timeout_graceful_shutdown=5,
    )
    return uvicorn.Server(config)


class EmulatorServer:
    """The emulator on ``host:port`` in a background thread; a context manager."""

    def __init__(
        self,
        config: EmulatorConfig,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        backend: Backend | None = None,
    ) -> None:
        self.config = config
        self._backend = backend
        self.host = host
        self._requested_port = port
        self._app: Starlette | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._failure: BaseException | None = None
        self.port = port

    @property
    def app(self) -> Starlette:
        if self._app is None:
            raise EmulatorServerError("the emulator server is not started")
        return self._app

    @property
    def state(self) -> EmulatorState:
        state: EmulatorState = self.app.state.emulator
        return state

    @property
    def accounts(self) -> Accounts:
        """Every account served (``config.accounts``); ``accounts.get(0)`` is :attr:`state`."""
        accounts: Accounts = self.app.state.accounts
        return accounts

    def api_key_of(self, account: int) -> str:
        """The full-access private key of account ``account`` (0 to ``config.accounts``-1)."""
        return self.accounts.full_access_key(account)

    @property
    def base_url(self) -> str:
        return _url(self.host, self.port)

    @property
    def api_key(self) -> str:
        """The full-access private key of the emulated account."""
        return self.state.api_key

    def start(self) -> EmulatorServer:
        if self._thread is not None:
            raise EmulatorServerError("the emulator server is already started")
        check_exposure(self.host, self.config)
        sock = bind_socket(self.host, self._requested_port)
        self._socket = sock
        self.port = sock.getsockname()[1]
        base = self.config
        if base.public_base_url is None:
            base = replace(base, public_base_url=self.base_url)
        try:
            self._app = create_app(base, backend=self._backend)
        except BaseException:
            # e.g. a bad fault spec: do not leave the bound socket behind
            self._socket = None
            sock.close()
            raise
        self._server = _uvicorn(self._app, self.config.header_timeout)
        self._thread = threading.Thread(
            target=self._run, name=f"kbridge-emulator:{self.port}", daemon=True
        )
        self._thread.start()
        self._wait_started()
        return self

    def _run(self) -> None:
        assert self._server is not None
        assert self._socket is not None
        try:
            asyncio.run(_serve(self._server, self.app, self._socket))
        except BaseException as exc:  # surfaced by start()/stop() in the caller's thread
            self._failure = exc

    def _wait_started(self) -> None:
        assert self._server is not None
        assert self._thread is not None
        waited = threading.Event()
        for _ in range(int(_START_TIMEOUT / 0.01)):
            if self._server.started or not self._thread.is_alive():
                break
            waited.wait(0.01)
        if not self._server.started:
            self.stop()
            raise EmulatorServerError(f"the emulator failed to start: {self._failure!r}")

    def stop(self) -> None:
        """Stop serving and wait for the thread; safe to call twice."""
        if self._app is not None:
            # held (stalled) requests would keep uvicorn's graceful shutdown waiting
            self.state.faults.release()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=_START_TIMEOUT)
            self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmulatorServer({self.base_url}, seed={self.config.seed})"


def serve(
    config: EmulatorConfig,
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    sock: socket.socket | None = None,
    app: Starlette | None = None,
) -> None:
    """Serve until interrupted (Ctrl-C), in the calling thread — the CLI's ``serve``.

    Pass an already bound ``sock`` (and the ``app`` built for it) to learn the
    port and print details before blocking.
    """
    check_exposure(host, config)
    sock = sock or bind_socket(host, port)
    if app is None:
        if config.public_base_url is None:
            config = replace(config, public_base_url=_url(host, sock.getsockname()[1]))
        app = create_app(config)
    server = _uvicorn(app, config.header_timeout)
    try:
        with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as loop:
            loop.run(_serve(server, app, sock))
    finally:
        sock.close()
