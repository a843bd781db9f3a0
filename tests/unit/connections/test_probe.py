"""How probe answers map to granted / missing / unknown scopes (scripted HTTP, no network)."""

from __future__ import annotations

import httpx
import pytest

from kbridge.api import AsyncClient, ClientConfig, RetryPolicy
from kbridge.api.errors import AuthenticationError
from kbridge.connections import probe_capabilities, probe_operation
from kbridge.core import ManualClock

pytestmark = pytest.mark.unit

KEY = "pk_" + "Ab3" * 12


def _error(status: int, detail: str = "no") -> httpx.Response:
    body = {"errors": [{"id": "r", "status": status, "code": "x", "title": "t", "detail": detail}]}
    return httpx.Response(status, json=body)


def _client(answer: dict[str, httpx.Response], seen: list[httpx.Request]) -> AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer.get(request.url.path, httpx.Response(200, json={"data": []}))

    return AsyncClient(
        KEY,
        base_url="https://a.klaviyo.test",
        transport=httpx.MockTransport(handler),
        clock=ManualClock(),
        config=ClientConfig(retry=RetryPolicy.never()),
    )


def _path(scope: str) -> str:
    op = probe_operation(scope)
    assert op is not None
    return op.path


@pytest.mark.anyio
async def test_answers_past_the_scope_check_grant_and_403s_name_what_is_missing() -> None:
    seen: list[httpx.Request] = []
    answers = {
        _path("data-privacy:write"): _error(400, "the document is empty"),
        _path("events:read"): _error(503),
        _path("metrics:read"): _error(429),
        _path("lists:read"): _error(
            403, "Missing scope(s) for get_lists: lists:read, segments:read, data-privacy:write."
        ),
    }
    async with _client(answers, seen) as client:
        report = await probe_capabilities(client, ["privacy-delete", "privacy-access", "sync"])
    assert "data-privacy:write" in report.granted  # a 400 comes after the scope check
    assert "profiles:read" in report.granted
    assert set(report.missing) == {"segments:read", "lists:read"}
    assert "events:read" in report.unknown
    assert "metrics:read" in report.unknown
    by_cap = {status.capability: status for status in report.capabilities}
    assert by_cap["privacy-delete"].ok
    assert by_cap["privacy-access"].missing == ("lists:read", "segments:read")
    assert by_cap["privacy-access"].unknown == ("events:read",)
    assert report.served == ("privacy-delete",)
    # the 403 named segments:read too, so it was never probed on its own; data-privacy:write
    # had already answered past the scope check, so a 403 naming it does not take it back
    assert not any(r.url.path == _path("segments:read") for r in seen)
    # writes are probed with an empty document, reads with one-item pages; nothing is deleted
    assert all(r.method != "DELETE" for r in seen)
    write = next(r for r in seen if r.url.path == _path("data-privacy:write"))
    assert write.content == b'{"data":{}}'


@pytest.mark.anyio
async def test_a_dead_key_stops_the_probe() -> None:
    seen: list[httpx.Request] = []
    async with _client({_path("profiles:read"): _error(401)}, seen) as client:
        with pytest.raises(AuthenticationError):
            await probe_capabilities(client, ["privacy-delete"])


@pytest.mark.anyio
async def test_known_granted_scopes_cost_no_request() -> None:
    seen: list[httpx.Request] = []
    async with _client({}, seen) as client:
        report = await probe_capabilities(client, ["connect"], known_granted=["accounts:read"])
    assert report.served == ("connect",)
    assert seen == []
