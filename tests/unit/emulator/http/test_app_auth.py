"""Routing, authentication, scopes and the revision header, in Klaviyo's order."""

from __future__ import annotations

import pytest

from tests.unit.emulator.http.test_app_fakes import KEY, assert_error, client_for, make_app

pytestmark = [pytest.mark.unit, pytest.mark.anyio]


async def test_unknown_path_is_a_jsonapi_404() -> None:
    app, *_ = make_app()
    async with client_for(app) as c:
        r = await c.get("/api/unicorns")
    error = assert_error(r, 404, "not_found")
    assert "/api/unicorns" in error["detail"]


async def test_known_path_with_another_method_is_405_with_allow() -> None:
    app, *_ = make_app()
    async with client_for(app) as c:
        r = await c.put("/api/profiles")
    assert_error(r, 405, "method_not_allowed")
    assert set(r.headers["allow"].split(", ")) == {"GET", "POST"}


async def test_trailing_slash_is_accepted() -> None:
    app, backend, *_ = make_app()
    async with client_for(app) as c:
        r = await c.get("/api/profiles/P001/")
    assert r.status_code == 200
    assert backend.calls[-1].path_params == {"id": "P001"}


async def test_operation_not_emulated_is_501_naming_it() -> None:
    app, backend, *_ = make_app()
    async with client_for(app) as c:
        r = await c.get("/api/campaigns", params={"filter": "equals(messages.channel,'email')"})
    error = assert_error(r, 501, "not_implemented")
    assert "get_campaigns" in error["detail"]
    assert backend.calls == []


async def test_client_endpoints_refuse_private_keys_and_need_company_id() -> None:
    app, *_ = make_app()
    async with client_for(app) as c:
        with_key = await c.post("/client/events", params={"company_id": "AbC123"})
        without_company = await c.post("/client/events", headers={"Authorization": ""})
        public = await c.post(
            "/client/events", params={"company_id": "AbC123"}, headers={"Authorization": ""}
        )
    assert_error(with_key, 401, "not_authenticated")
    assert_error(without_company, 400, "invalid", parameter="company_id")
    assert_error(public, 501, "not_implemented")


@pytest.mark.parametrize(
    ("authorization", "detail_part"),
    [
        (None, "Please use Klaviyo-API-Key"),
        (f"Bearer {KEY}", "Incorrect authentication credentials"),
        (KEY, "Please use Klaviyo-API-Key"),
        (f"Token {KEY}", "Please use Klaviyo-API-Key"),
        ("Klaviyo-API-Key pk_notarealkeyatall0000000000000000000", "Incorrect"),
        ("Klaviyo-API-Key", "Please use Klaviyo-API-Key"),
    ],
)
async def test_missing_wrong_scheme_or_unknown_key_is_klaviyos_401(
    authorization: str | None, detail_part: str
) -> None:
    app, backend, *_ = make_app()
    async with client_for(app) as c:
        headers = {} if authorization is None else {"Authorization": authorization}
        if authorization is None:
            c.headers.pop("Authorization")
        r = await c.get("/api/accounts", headers=headers)
    error = assert_error(r, 401, "not_authenticated", pointer="/data/")
    assert error["title"] == "Authentication credentials were not provided."
    assert detail_part in error["detail"]
    assert KEY not in r.text
    assert backend.calls == []


async def test_401_comes_before_revision_and_scope_checks() -> None:
    app, *_ = make_app()
    async with client_for(app) as c:
        r = await c.get("/api/accounts", headers={"Authorization": "", "revision": "nonsense"})
    assert_error(r, 401, "not_authenticated")


async def test_scoped_key_gets_403_naming_the_missing_scope() -> None:
    app, *_ = make_app()
    async with client_for(app) as c:
        minted = await c.post("/_emulator/keys", json={"scopes": ["profiles:read"]})
        assert minted.status_code == 201
        key = minted.json()["key"]
        scoped = {"Authorization": f"Klaviyo-API-Key {key}"}
        allowed = await c.get("/api/profiles", headers=scoped)
        refused = await c.get("/api/accounts", headers=scoped)
        write = await c.post("/api/profiles", headers=scoped, json={})
    assert allowed.status_code == 200
    error = assert_error(refused, 403, "permission_denied")
    assert "accounts:read" in error["detail"]
    assert "profiles:write" in assert_error(write, 403, "permission_denied")["detail"]


async def test_bearer_tokens_authenticate_expire_and_carry_scopes() -> None:
    app, _, clock, _ = make_app()
    async with client_for(app) as c:
        issued = await c.post(
            "/_emulator/tokens",
            json={"scopes": ["accounts:read"], "installation_id": "app-1", "expires_in": 60},
        )
        token = issued.json()["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}
        ok = await c.get("/api/accounts", headers=bearer)
        no_scope = await c.get("/api/profiles", headers=bearer)
        clock.advance(61)
        expired = await c.get("/api/accounts", headers=bearer)
    assert issued.status_code == 201
    assert ok.status_code == 200
    assert_error(no_scope, 403, "permission_denied")
    assert "expired" in assert_error(expired, 401, "not_authenticated")["detail"]


@pytest.mark.parametrize("revision", ["2026-07-15", "2026-10-15", "2026-07-15.pre"])
async def test_every_implemented_revision_is_served(revision: str) -> None:
    app, *_ = make_app()
    async with client_for(app) as c:
        r = await c.get("/api/accounts", headers={"revision": revision})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("revision", ["2025-01-01", "2026-04-15"])
async def test_a_revision_the_emulator_does_not_implement_is_400(revision: str) -> None:
    app, *_ = make_app()
    async with client_for(app) as c:
        refused = await c.get("/api/accounts", headers={"revision": revision})
    error = assert_error(refused, 400, "invalid", parameter="revision")
    assert revision in error["detail"]
    assert "2026-07-15" in error["detail"]


@pytest.mark.parametrize("revision", [None, "", "2026-7-15", "yesterday", "2026-02-30"])
async def test_missing_or_malformed_revision_is_400_on_revision(revision: str | None) -> None:
    app, *_ = make_app()
    async with client_for(app) as c:
        if revision is None:
            c.headers.pop("revision")
        else:
            c.headers["revision"] = revision
        r = await c.get("/api/accounts")
    assert_error(r, 400, "invalid", parameter="revision")


async def test_missing_revision_falls_forward_when_not_required() -> None:
    app, *_ = make_app(require_revision=False)
    async with client_for(app) as c:
        c.headers.pop("revision")
        r = await c.get("/api/accounts")
    assert r.status_code == 200


async def test_future_revision_is_refused_relative_to_the_simulated_clock() -> None:
    app, _, clock, _ = make_app(extra_revisions=("2026-12-01",))
    async with client_for(app) as c:
        future = await c.get("/api/accounts", headers={"revision": "2026-12-01"})
        clock.advance(20 * 86400)
        later = await c.get("/api/accounts", headers={"revision": "2026-12-01"})
    error = assert_error(future, 400, "invalid", parameter="revision")
    assert "unable to specify a future revision date" in error["detail"]
    assert later.status_code == 200


async def test_retired_revision_falls_forward_or_410_when_opted_out() -> None:
    app, *_ = make_app()
    async with client_for(app) as c:
        old = await c.get("/api/accounts", headers={"revision": "2023-02-22"})
        opted_out = await c.get(
            "/api/accounts",
            headers={"revision": "2023-02-22", "X-Klaviyo-Revision-Fall-Forward-Opt-Out": "1"},
        )
    assert old.status_code == 200
    assert_error(opted_out, 410, "gone", parameter="revision")


def test_keys_are_deterministic_per_seed_and_never_shown_in_reprs() -> None:
    from kbridge.emulator.http.auth import generate_private_key

    assert generate_private_key(42) == generate_private_key(42)
    assert generate_private_key(42) != generate_private_key(43)
    app, *_ = make_app()
    state = app.state.emulator
    minted = state.keys.mint(["profiles:read"])
    token = state.tokens.issue(["profiles:read"], installation_id="i-1")
    shown = repr(state) + repr(state.keys) + repr(state.tokens)
    for secret in (KEY, minted, token):
        assert secret not in shown


def test_a_leap_day_revision_retires_on_the_right_day() -> None:
    from datetime import date

    from kbridge.emulator.http.errors import HttpProblem
    from kbridge.emulator.http.revision import resolve_revision

    today = date(2026, 2, 28)
    kept = resolve_revision("2024-02-29", today=today, default="2026-01-15")
    assert not kept.fell_forward
    old = resolve_revision("2024-02-27", today=today, default="2026-01-15")
    assert old.fell_forward
    assert old.effective == "2024-02-28"
    with pytest.raises(HttpProblem) as caught:
        resolve_revision("2024-02-27", today=today, default="2026-01-15", fall_forward_opt_out=True)
    assert caught.value.status == 410
