"""A scripted Klaviyo double for pipeline tests: MockTransport + the simulated clock."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

import httpx

from kbridge.api import AsyncClient, ClientConfig
from kbridge.core import ManualClock

KEY = "pk_" + "Ab3" * 12  # private-key shaped, 39 characters
BASE = "https://a.klaviyo.com"

Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def jsonapi(
    status: int = 200, body: Any = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def error(status: int, code: str = "invalid", detail: str = "bad", **extra: Any) -> httpx.Response:
    item: dict[str, Any] = {
        "id": f"req-{status}",
        "status": status,
        "code": code,
        "title": "Error.",
        "detail": detail,
    }
    headers = extra.pop("headers", None)
    item.update(extra)
    return httpx.Response(status, json={"errors": [item]}, headers=headers)


class Server:
    """Answers from a script (or a function) and records each request with its simulated time."""

    def __init__(
        self,
        clock: ManualClock,
        script: Sequence[Reply] = (),
        *,
        respond: Callable[[httpx.Request], Awaitable[httpx.Response] | httpx.Response]
        | None = None,
    ) -> None:
        self.clock = clock
        self.script: list[Reply] = list(script)
        self.respond = respond
        self.requests: list[httpx.Request] = []
        self.times: list[float] = []

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.times.append(self.clock.monotonic())
        if self.respond is not None:
            result = self.respond(request)
            if isinstance(result, httpx.Response):
                return result
            return await result
        if not self.script:
            return jsonapi(200, {"data": []})
        reply = self.script.pop(0)
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, httpx.Response):
            return reply
        return reply(request)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)


#: keywords this helper takes that belong on the client's config
_SETTINGS = ("revision", "retry", "timeout", "total_timeout", "limiter")


def client(server: Server, **kwargs: Any) -> AsyncClient:
    kwargs.setdefault("random", lambda: 0.5)
    api_key = kwargs.pop("api_key", None if "token_provider" in kwargs else KEY)
    settings = {name: kwargs.pop(name) for name in _SETTINGS if name in kwargs}
    if settings:
        kwargs["config"] = replace(kwargs.get("config") or ClientConfig(), **settings)
    return AsyncClient(api_key, transport=server.transport, clock=server.clock, **kwargs)


def max_in_window(times: Sequence[float], width: float) -> int:
    """The most timestamps any half-open window ``[a, a + width)`` holds, over every ``a``."""
    ordered = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(ordered):
        while t - ordered[lo] >= width:
            lo += 1
        best = max(best, hi - lo + 1)
    return best
