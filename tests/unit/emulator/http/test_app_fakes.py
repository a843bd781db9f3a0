"""A tiny in-memory backend (no tests here) so the HTTP layer is tested on its own.

It implements a handful of operations with the shapes the real backend
gives, and records each :class:`Call` it receives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from kbridge.catalog import REVISION
from kbridge.core import ManualClock
from kbridge.emulator.backend.call import Call, Outcome
from kbridge.emulator.backend.errors import ConflictError, NotFoundError
from kbridge.emulator.backend.resource import Resource
from kbridge.emulator.config import EmulatorConfig
from kbridge.emulator.http.app import create_app
from kbridge.emulator.query import Page, decode_cursor, encode_cursor
from kbridge.emulator.simclock import SimClock

START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
KEY = "pk_" + "a1" * 17


def profile(i: int) -> Resource:
    return Resource(
        type="profile",
        id=f"P{i:03d}",
        attributes={
            "email": f"user{i}@example.com",
            "first_name": f"User{i}",
            "location": {"country": "US", "city": "Boston", "zip": "02110"},
            "properties": {"plan": "gold"},
        },
        relationships={"lists": [("list", "L1")]},
        links_only=("segments",),
    )


@dataclass
class FakeBackend:
    account_id: str = "AbC123"
    implemented: frozenset[str] = frozenset(
        {
            "get_accounts",
            "get_profiles",
            "get_profile",
            "create_profile",
            "update_profile",
            "create_event",
            "add_profiles_to_list",
            "get_profile_ids_for_list",
            "create_list",
        }
    )
    calls: list[Call] = field(default_factory=list)
    due_runs: int = 0
    resets: int = 0
    profiles: int = 5

    def run_due(self, *, complete_imports: bool = True) -> None:
        self.due_runs += 1

    def work(self, rows: int) -> float | None:
        return None  # no jobs here

    def truth(self) -> dict[str, Any]:
        return {"seed": 42, "profiles": {"P000": {"stage": "active"}}}

    def reset(self) -> None:
        self.resets += 1

    def dispatch(self, call: Call) -> Outcome:
        self.calls.append(call)
        op_id = call.operation.operation_id
        if op_id == "get_accounts":
            return Outcome(data=[Resource("account", self.account_id, {"timezone": "UTC"})])
        if op_id == "get_profiles":
            return self._page(call)
        if op_id == "get_profile":
            pid = call.path_params["id"]
            if pid != "P001":
                raise NotFoundError(f"A profile with id {pid} does not exist.")
            included = [Resource("list", "L1", {"name": "Newsletter"})]
            return Outcome(data=profile(1), included=included + included)
        if op_id == "create_profile":
            email = call.body["data"]["attributes"].get("email")
            if email == "user1@example.com":
                raise ConflictError(
                    "A profile already exists with one of these identifiers.",
                    code="duplicate_profile",
                    pointer="/data/attributes",
                    meta={"duplicate_profile_id": "P001"},
                )
            return Outcome(data=Resource("profile", "PNEW", {"email": email}))
        if op_id == "update_profile":
            return Outcome(data=profile(1))
        if op_id == "create_list":
            return Outcome(data=Resource("list", "LNEW", call.body["data"]["attributes"]))
        if op_id == "get_profile_ids_for_list":
            return Outcome(data=[profile(1), profile(2)], identifiers_only=True)
        return Outcome()  # create_event (202), add_profiles_to_list (204)

    def _page(self, call: Call) -> Outcome:
        size = call.query.page_size or 2
        start = decode_cursor(call.query.cursor)[0] if call.query.cursor else 0
        items = [profile(i) for i in range(start, min(start + size, self.profiles))]
        nxt = encode_cursor(start + size) if start + size < self.profiles else None
        prev = encode_cursor(max(0, start - size)) if start > 0 else None
        return Outcome(data=Page(items, next_cursor=nxt, prev_cursor=prev))


def make_app(**config: Any) -> tuple[Any, FakeBackend, SimClock, ManualClock]:
    base = ManualClock(START)
    clock = SimClock(base)
    backend = FakeBackend()
    settings: dict[str, Any] = {"api_key": KEY, "rate_limit_factor": None}
    settings.update(config)
    app = create_app(EmulatorConfig(**settings), backend=backend, clock=clock)
    return app, backend, clock, base


def client_for(app: Any, *, client: tuple[str, int] = ("127.0.0.1", 5000)) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=client)
    return httpx.AsyncClient(
        transport=transport,
        base_url="http://emulator.test",
        headers={"Authorization": f"Klaviyo-API-Key {KEY}", "revision": REVISION},
    )


JSONAPI = "application/vnd.api+json"


def assert_error(response: httpx.Response, status: int, code: str, **source: str) -> dict[str, Any]:
    """The one error of a Klaviyo error body, checked for shape, status and code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == JSONAPI
    errors = response.json()["errors"]
    assert len(errors) == 1
    error: dict[str, Any] = errors[0]
    assert set(error) == {"id", "status", "code", "title", "detail", "source", "meta"}
    assert error["status"] == status
    assert error["code"] == code
    assert len(error["id"]) == 36
    if source:
        assert error["source"] == source
    return error
