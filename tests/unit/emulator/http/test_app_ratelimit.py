"""Rate limiting as the app applies it: 429 bodies, headers, buckets and counting."""

from __future__ import annotations

import pytest

from tests.unit.emulator.http.test_app_fakes import assert_error, client_for, make_app

pytestmark = [pytest.mark.unit, pytest.mark.anyio]


async def test_second_request_in_the_burst_second_is_klaviyos_429() -> None:
    # GET /api/accounts is 1/s, 15/m: any factor <= 1 keeps the burst at one request
    app, backend, _, base = make_app(rate_limit_factor=0.5)
    async with client_for(app) as c:
        first = await c.get("/api/accounts")
        second = await c.get("/api/accounts")
        base.advance(1.0)
        third = await c.get("/api/accounts")
    assert first.status_code == 200
    assert {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= set(first.headers)
    error = assert_error(second, 429, "throttled", pointer="/data/")
    assert error["title"] == "Request was throttled."
    retry_after = int(second.headers["retry-after"])
    assert retry_after >= 1
    assert error["detail"] == (
        f"Request was throttled. Expected available in {retry_after} seconds."
    )
    assert not any(h.startswith("ratelimit-") for h in second.headers)
    assert third.status_code == 200
    assert len(backend.calls) == 2


async def test_keys_of_one_account_share_a_bucket_oauth_installations_do_not() -> None:
    app, *_ = make_app(rate_limit_factor=0.5)
    async with client_for(app) as c:
        other_key = (await c.post("/_emulator/keys", json={"scopes": ["accounts:read"]})).json()
        token = (await c.post("/_emulator/tokens", json={"scopes": ["accounts:read"]})).json()[
            "access_token"
        ]
        assert (await c.get("/api/accounts")).status_code == 200
        same_account = await c.get(
            "/api/accounts", headers={"Authorization": f"Klaviyo-API-Key {other_key['key']}"}
        )
        installation = await c.get("/api/accounts", headers={"Authorization": f"Bearer {token}"})
    assert same_account.status_code == 429
    assert installation.status_code == 200


async def test_requests_refused_after_the_limiter_still_count() -> None:
    app, backend, *_ = make_app(rate_limit_factor=0.5)
    async with client_for(app) as c:
        bad = await c.get("/api/accounts", params={"page[size]": "5"})
        after = await c.get("/api/accounts")
    assert bad.status_code == 400
    assert after.status_code == 429
    assert backend.calls == []


async def test_requests_refused_before_the_limiter_do_not_count() -> None:
    app, *_ = make_app(rate_limit_factor=0.5)
    async with client_for(app) as c:
        unauthenticated = await c.get("/api/accounts", headers={"Authorization": ""})
        ok = await c.get("/api/accounts")
    assert unauthenticated.status_code == 401
    assert ok.status_code == 200


async def test_rate_limits_off_still_answers_every_request() -> None:
    app, *_ = make_app(rate_limit_factor=None)
    async with client_for(app) as c:
        statuses = [(await c.get("/api/accounts")).status_code for _ in range(30)]
    assert statuses == [200] * 30


async def test_stats_count_requests_statuses_and_throttles() -> None:
    app, *_ = make_app(rate_limit_factor=0.5)
    async with client_for(app) as c:
        for _ in range(3):
            await c.get("/api/accounts")
        await c.get("/api/nothing-here")
        stats = (await c.get("/_emulator/stats")).json()
    accounts = stats["operations"]["get_accounts"]
    assert accounts["requests"] == 3
    assert accounts["statuses"] == {"200": 1, "429": 2}
    assert accounts["throttled"] == 2
    assert accounts["latency_ms"]["p50"] is not None
    assert accounts["latency_ms"]["p95"] >= accounts["latency_ms"]["p50"]
    assert stats["operations"]["(unmatched)"]["statuses"] == {"404": 1}
    assert stats["requests"] == 4
    assert stats["throttled"] == 2


async def test_an_exhausted_daily_cap_says_so_and_waits_for_simulated_midnight() -> None:
    # POST /api/lists: 10/s, 150/m and 150/day; a factor of 0.001 leaves one of each
    app, _, clock, base = make_app(rate_limit_factor=0.001)
    body = {"data": {"type": "list", "attributes": {"name": "Daily"}}}
    async with client_for(app) as c:
        first = await c.post("/api/lists", json=body)
        base.advance(61.0)  # burst and steady windows are free again; the day is not
        second = await c.post("/api/lists", json=body)
        clock.advance(24 * 3600.0)  # the next simulated day
        base.advance(61.0)
        third = await c.post("/api/lists", json=body)
    assert first.status_code == 201
    error = assert_error(second, 429, "throttled")
    assert "daily quota" in error["detail"]
    # START is 12:00 UTC; 61 s later, midnight is 11 h 58 min 59 s away
    assert int(second.headers["retry-after"]) == 12 * 3600 - 61
    assert f"Expected available in {second.headers['retry-after']} seconds." in error["detail"]
    assert third.status_code == 201


async def test_daily_caps_are_configurable_per_operation_and_by_quota_timezone() -> None:
    # the spec gives POST /api/lists 150/day; 2 here, unscaled by the factor, with days that
    # start at midnight in Tokyo (START is 12:00 UTC = 21:00 in Tokyo: 3 h to the next day)
    app, _, clock, base = make_app(rate_limit_factor=100.0, daily_caps={"create_list": 2},
                                   daily_cap_timezone="Asia/Tokyo")  # fmt: skip
    body = {"data": {"type": "list", "attributes": {"name": "Capped"}}}
    async with client_for(app) as c:
        allowed = [(await c.post("/api/lists", json=body)).status_code for _ in range(2)]
        refused = await c.post("/api/lists", json=body)
        clock.advance(3 * 3600.0)
        base.advance(1.0)
        again = await c.post("/api/lists", json=body)
    assert allowed == [201, 201]
    assert_error(refused, 429, "throttled")
    assert int(refused.headers["retry-after"]) == 3 * 3600
    assert again.status_code == 201
    # factor 0.01 leaves 1/s, 1/min and 1/day; without the daily cap a minute apart is enough
    uncapped, _, _, base = make_app(rate_limit_factor=0.01, daily_caps={"create_list": None})
    async with client_for(uncapped) as c:
        statuses = []
        for _ in range(3):
            statuses.append((await c.post("/api/lists", json=body)).status_code)
            base.advance(61.0)
    assert statuses == [201, 201, 201]
