"""``get_page_bytes``: a page's body undecoded, paced and checked like every other call."""

from __future__ import annotations

import httpx
import pytest

from kbridge import catalog
from kbridge.api import AsyncClient, PermissionDeniedError, UnexpectedResponseError
from kbridge.api.jsonapi import next_link
from kbridge.core import ManualClock, loads
from kbridge.emulator import EmulatorServer

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def _plain(server: EmulatorServer, url: str) -> bytes:
    headers = {
        "Authorization": f"Klaviyo-API-Key {server.api_key}",
        "revision": catalog.REVISION,
        "accept": "application/vnd.api+json",
    }
    response = httpx.get(url, headers=headers)
    response.raise_for_status()
    return response.content


async def test_pages_come_as_the_server_sent_them_and_follow_next(server: EmulatorServer) -> None:
    params = {"page[size]": 100}
    walked: list[str] = []
    async with AsyncClient(server.api_key, base_url=server.base_url, clock=ManualClock()) as api:
        url = None
        while True:
            body = await api.get_page_bytes("get_events", params=params, url=url)
            expected = _plain(server, url or f"{server.base_url}/api/events?page%5Bsize%5D=100")
            assert body == expected
            walked += [r["id"] for r in loads(body)["data"]]
            url = next_link(body)
            assert api.decode_page(body).next_url == url
            if url is None:
                break
    assert len(walked) == len(set(walked)) == 300  # the account's events, each once


def _key_without_events(server: EmulatorServer) -> str:
    made = httpx.post(f"{server.base_url}/_emulator/keys", json={"scopes": ["profiles:read"]})
    made.raise_for_status()
    key: str = made.json()["key"]
    return key


async def test_errors_are_raised_as_for_any_call(server: EmulatorServer) -> None:
    async with AsyncClient(_key_without_events(server), base_url=server.base_url) as api:
        with pytest.raises(PermissionDeniedError, match="events:read"):
            await api.get_page_bytes("get_events")


def test_a_body_that_is_not_json_is_an_unexpected_response() -> None:
    with pytest.raises(UnexpectedResponseError, match="expected JSON:API"):
        AsyncClient.decode_page(b"<html>maintenance</html>", "get_events")
