"""The /_emulator control plane."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.unit.emulator.http.test_app_fakes import START, client_for, make_app

pytestmark = [pytest.mark.unit, pytest.mark.anyio]


async def test_control_plane_refuses_non_loopback_clients() -> None:
    app, *_ = make_app()
    async with client_for(app, client=("10.1.2.3", 4000)) as c:
        r = await c.post("/_emulator/keys", json={"scopes": []})
        stats = await c.get("/_emulator/stats")
    assert r.status_code == 403
    assert stats.status_code == 403


async def test_ipv6_loopback_is_allowed() -> None:
    app, *_ = make_app()
    async with client_for(app, client=("::1", 4000)) as c:
        r = await c.get("/_emulator/stats")
    assert r.status_code == 200


async def test_minting_keys_validates_scopes() -> None:
    app, *_ = make_app()
    async with client_for(app) as c:
        ok = await c.post("/_emulator/keys", json={"scopes": ["lists:read", "lists:read"]})
        unknown = await c.post("/_emulator/keys", json={"scopes": ["lists:read", "unicorns:ride"]})
        not_list = await c.post("/_emulator/keys", json={"scopes": "lists:read"})
        not_json = await c.post(
            "/_emulator/keys", content=b"{", headers={"content-type": "application/json"}
        )
        not_a_json_type = await c.post(
            "/_emulator/keys", content=b'{"scopes": []}', headers={"content-type": "x"}
        )
    assert ok.status_code == 201
    key = ok.json()["key"]
    assert key.startswith("pk_")
    assert len(key) == 37
    assert key[3:].isalnum()
    assert ok.json()["scopes"] == ["lists:read"]
    assert unknown.status_code == 400
    assert "unicorns:ride" in unknown.json()["error"]
    assert not_list.status_code == 400
    assert not_json.status_code == 400
    assert not_a_json_type.status_code == 415


async def test_an_admin_token_admits_a_client_beyond_loopback() -> None:
    app, *_ = make_app(admin_token="adm-1")
    async with client_for(app, client=("10.1.2.3", 4000)) as c:
        bearer = {"Authorization": "Bearer adm-1"}
        with_token = await c.post("/_emulator/keys", json={"scopes": []}, headers=bearer)
        without = await c.get("/_emulator/stats")
    assert with_token.status_code == 201
    assert without.status_code == 401
    assert without.headers["www-authenticate"].startswith("Bearer")


async def test_advancing_the_clock_moves_simulated_time_and_runs_due_work() -> None:
    app, backend, clock, _ = make_app()
    async with client_for(app) as c:
        before = (await c.get("/_emulator/clock")).json()["now"]
        moved = await c.post("/_emulator/clock", json={"advance_seconds": 3600})
        backwards = await c.post("/_emulator/clock", json={"advance_seconds": -1})
        text = await c.post("/_emulator/clock", json={"advance_seconds": "soon"})
    assert datetime.fromisoformat(before) == START
    assert datetime.fromisoformat(moved.json()["now"]) == START + timedelta(hours=1)
    assert clock.now() == START + timedelta(hours=1)
    assert backend.due_runs == 1
    assert backwards.status_code == 400
    assert text.status_code == 400


async def test_reset_regenerates_the_account_and_keeps_minted_keys() -> None:
    app, backend, *_ = make_app(rate_limit_factor=0.5)
    async with client_for(app) as c:
        key = (await c.post("/_emulator/keys", json={"scopes": ["accounts:read"]})).json()["key"]
        await c.get("/api/accounts")
        assert (await c.get("/api/accounts")).status_code == 429
        reset = await c.post("/_emulator/reset")
        after = await c.get("/api/accounts", headers={"Authorization": f"Klaviyo-API-Key {key}"})
        stats = (await c.get("/_emulator/stats")).json()
    assert reset.status_code == 200
    assert reset.json() == {"reset": True, "account_id": "AbC123"}
    assert backend.resets == 1
    assert after.status_code == 200  # the key survived and the windows were cleared
    assert stats["operations"]["get_accounts"]["requests"] == 1


async def test_truth_is_the_backends_ground_truth() -> None:
    app, *_ = make_app()
    async with client_for(app) as c:
        r = await c.get("/_emulator/truth")
    assert r.json() == {"seed": 42, "profiles": {"P000": {"stage": "active"}}}


async def test_deleting_stats_starts_counting_afresh() -> None:
    app, *_ = make_app()
    async with client_for(app) as c:
        await c.get("/api/profiles/P001")
        before = (await c.get("/_emulator/stats")).json()
        cleared = await c.delete("/_emulator/stats")
        after = (await c.get("/_emulator/stats")).json()
    assert before["requests"] == 1
    assert cleared.status_code == 204
    assert (after["requests"], after["operations"]) == (0, {})
