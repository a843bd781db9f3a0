"""The blocking Client: same pipeline on a private event loop."""

from __future__ import annotations

import gc
import threading

import httpx
import pytest

from kbridge.api import Client, InvalidCredentialsError, ServerError, build_document
from kbridge.core import ManualClock

from ._support import BASE, KEY, Server, error, jsonapi

pytestmark = pytest.mark.unit


def make(server: Server) -> Client:
    return Client(KEY, transport=server.transport, clock=server.clock, random=lambda: 0.5)


def test_request_and_document() -> None:
    clock = ManualClock()
    server = Server(clock, [error(500), jsonapi(200, {"data": {"type": "profile", "id": "1"}})])
    with make(server) as api:
        doc = api.get_document("get_profile", path_params={"id": "1"})
    assert doc.resources[0].id == "1"
    assert clock.slept == [0.25]
    assert len(server.requests) == 2


def test_errors_propagate_unchanged() -> None:
    server = Server(ManualClock(), [error(500)])
    with make(server) as api, pytest.raises(ServerError):
        api.request("create_profile", json=build_document("profile"))


def test_paginate_is_a_lazy_iterator() -> None:
    nxt = f"{BASE}/api/profiles?page%5Bcursor%5D=2"
    server = Server(
        ManualClock(),
        [
            jsonapi(200, {"data": [{"type": "p", "id": "1"}], "links": {"next": nxt}}),
            jsonapi(200, {"data": [{"type": "p", "id": "2"}], "links": {"next": None}}),
        ],
    )
    with make(server) as api:
        items = api.paginate("get_profiles")
        assert server.requests == []
        assert next(items).id == "1"
        assert len(server.requests) == 1
        assert [r.id for r in items] == ["2"]
        pages = list(api.iter_pages("get_profiles"))
    assert len(server.requests) == 3
    assert len(pages) == 1


def test_raw_and_close_twice() -> None:
    server = Server(ManualClock(), [httpx.Response(204)])
    api = make(server)
    response = api.raw("DELETE", "/api/lists/L1")
    assert (response.status, response.operation_id) == (204, "delete_list")
    api.close()
    api.close()
    assert KEY not in repr(api)


def test_bad_key_raises_and_leaves_no_thread_behind() -> None:
    before = threading.active_count()
    with pytest.raises(InvalidCredentialsError, match="public"):
        Client("AbC123")
    assert threading.active_count() == before


def test_close_stops_the_loop_thread() -> None:
    before = threading.active_count()
    with make(Server(ManualClock())):
        assert threading.active_count() == before + 1
    assert threading.active_count() == before


def test_abandoning_a_paginator_midway_is_clean() -> None:
    nxt = f"{BASE}/api/profiles?page%5Bcursor%5D=2"
    body = {"data": [{"type": "p", "id": "1"}, {"type": "p", "id": "2"}], "links": {"next": nxt}}
    server = Server(ManualClock(), respond=lambda _: jsonapi(200, body))
    with make(server) as api:
        closed = api.paginate("get_profiles")
        assert next(closed).id == "1"
        closed.close()  # closes the async generator on the loop
        abandoned = api.paginate("get_profiles")
        assert next(abandoned).id == "1"
    del abandoned  # collected after the client closed: nothing left to clean up, no error
    gc.collect()
    assert len(server.requests) == 2
