"""The emulator's listening socket disables Nagle, so responses don't wait on delayed ACKs."""

from __future__ import annotations

import socket

import pytest

from kbridge.emulator.server import bind_socket

pytestmark = pytest.mark.unit


def test_listening_socket_sets_tcp_nodelay_for_accepted_connections() -> None:
    listener = bind_socket("127.0.0.1", 0)
    try:
        assert listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        listener.setblocking(True)
        client = socket.create_connection(listener.getsockname()[:2], timeout=5)
        accepted, _ = listener.accept()
        with client, accepted:
            # Linux hands the option on to accepted sockets: what uvicorn writes to.
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        listener.close()
