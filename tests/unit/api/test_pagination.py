"""Cursor pagination: links.next followed verbatim, lazily, one page held at a time."""

from __future__ import annotations

import gc
import weakref

import httpx
import pytest

from kbridge.api import Document, UnexpectedResponseError
from kbridge.core import ManualClock

from ._support import BASE, Server, client, jsonapi

pytestmark = [pytest.mark.unit, pytest.mark.anyio]


def page(n: int, next_url: str | None, size: int = 2) -> httpx.Response:
    data = [{"type": "profile", "id": f"p{n}-{i}", "attributes": {"i": i}} for i in range(size)]
    return jsonapi(200, {"data": data, "links": {"self": "s", "next": next_url}})


NEXT_2 = f"{BASE}/api/profiles/?page%5Bcursor%5D=bmV4dDo6Mg&page%5Bsize%5D=100"
NEXT_3 = f"{BASE}/api/profiles/?page%5Bcursor%5D=bmV4dDo6Mw&page%5Bsize%5D=100"


def three_pages() -> list[httpx.Response]:
    return [page(1, NEXT_2), page(2, NEXT_3), page(3, None)]


async def test_paginate_follows_next_links_across_three_pages() -> None:
    server = Server(ManualClock(), three_pages())
    async with client(server) as api:
        ids = [r.id async for r in api.paginate("get_profiles", params={"sort": "-created"})]
    assert ids == ["p1-0", "p1-1", "p2-0", "p2-1", "p3-0", "p3-1"]
    first, second, third = server.requests
    assert first.url.params["page[size]"] == "100"  # the operation's maximum
    assert first.url.params["sort"] == "-created"
    assert str(second.url) == NEXT_2  # exactly as given, not rebuilt
    assert str(third.url) == NEXT_3
    assert all(r.headers["revision"] for r in server.requests)


async def test_a_given_page_size_is_kept() -> None:
    server = Server(ManualClock(), [page(1, None)])
    async with client(server) as api:
        [r async for r in api.paginate("get_profiles", params={"page[size]": 5})]
    assert server.requests[0].url.params["page[size]"] == "5"


async def test_operations_without_page_size_param_get_none() -> None:
    server = Server(ManualClock(), [page(1, None)])
    async with client(server) as api:
        [r async for r in api.paginate("get_metrics")]
    assert "page[size]" not in server.requests[0].url.params


async def test_pages_are_fetched_lazily_and_released() -> None:
    server = Server(ManualClock(), three_pages())
    async with client(server) as api:
        pages = api.iter_pages("get_profiles")
        first = await anext(pages)
        assert len(server.requests) == 1  # nothing fetched ahead
        ref = weakref.ref(first)
        del first
        second = await anext(pages)
        gc.collect()
        assert ref() is None  # the iterator kept no reference to page one
        assert isinstance(second, Document)
        assert len(server.requests) == 2
        await pages.aclose()  # type: ignore[attr-defined]
    assert len(server.requests) == 2


async def test_a_repeated_next_link_is_a_loop_and_raises() -> None:
    server = Server(ManualClock(), [page(1, NEXT_2), page(2, NEXT_2)])
    async with client(server) as api:
        with pytest.raises(UnexpectedResponseError, match="already returned"):
            [r async for r in api.paginate("get_profiles")]
    assert len(server.requests) == 2


async def test_a_next_link_to_another_host_is_not_followed() -> None:
    server = Server(ManualClock(), [page(1, "https://evil.example/api/profiles?page=2")])
    async with client(server) as api:
        with pytest.raises(UnexpectedResponseError, match="another host"):
            [r async for r in api.paginate("get_profiles")]
    assert len(server.requests) == 1


async def test_absent_links_end_iteration() -> None:
    server = Server(ManualClock(), [jsonapi(200, {"data": [{"type": "x", "id": "1"}]})])
    async with client(server) as api:
        assert [r.id async for r in api.paginate("get_profiles")] == ["1"]
