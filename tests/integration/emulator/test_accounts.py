"""One emulator serving several independent accounts (``EmulatorConfig.accounts``, #20 item 9)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kbridge.emulator import EmulatorConfig, EmulatorServer
from kbridge.emulator.http.auth import generate_private_key
from kbridge.testing.plugin import http_client_for

pytestmark = pytest.mark.integration

SEED = 7


@pytest.fixture(scope="module")
def three() -> Iterator[EmulatorServer]:
    # 100× the spec's windows so only the daily cap of get_accounts (1 a day) can refuse
    config = EmulatorConfig(
        seed=SEED,
        profiles=12,
        events=40,
        accounts=3,
        rate_limit_factor=100.0,
        daily_caps={"get_accounts": 1},
    )
    with EmulatorServer(config) as server:
        yield server


def profile_ids(client: httpx.Client) -> set[str]:
    response = client.get("/api/profiles", params={"page[size]": "100"})
    assert response.status_code == 200, response.text
    return {p["id"] for p in response.json()["data"]}


def profile_emails(client: httpx.Client) -> set[str]:
    response = client.get("/api/profiles", params={"page[size]": "100"})
    assert response.status_code == 200, response.text
    return {p["attributes"]["email"] for p in response.json()["data"]}


def test_each_account_has_its_own_key_and_data_from_seed_plus_i(three: EmulatorServer) -> None:
    keys = [three.api_key_of(i) for i in range(3)]
    assert keys == [generate_private_key(SEED + i) for i in range(3)]
    assert keys[0] == three.api_key
    alone = EmulatorConfig(seed=SEED + 1, profiles=12, events=40, rate_limit_factor=None)
    with EmulatorServer(alone) as single, http_client_for(single) as client:
        # ids embed the moment an account is generated; the people are the seed's
        expected_1 = profile_emails(client)
    with http_client_for(three, key=keys[0]) as a0, http_client_for(three, key=keys[1]) as a1:
        ids_0, ids_1 = profile_ids(a0), profile_ids(a1)
        emails_0, emails_1 = profile_emails(a0), profile_emails(a1)
    assert len(ids_0) == len(ids_1) == 12
    assert ids_0.isdisjoint(ids_1)
    assert emails_1 == expected_1  # account 1 is the account a lone emulator seeded 8 serves
    assert emails_0 != emails_1


def test_a_key_of_one_account_cannot_reach_anothers_objects(three: EmulatorServer) -> None:
    with http_client_for(three, key=three.api_key_of(1)) as a1:
        theirs = sorted(profile_ids(a1))[0]
    with http_client_for(three, key=three.api_key_of(0)) as a0:
        response = a0.get(f"/api/profiles/{theirs}")
        assert response.status_code == 404, response.text
        # a write lands in the caller's account only
        created = a0.post(
            "/api/profiles",
            json={"data": {"type": "profile", "attributes": {"email": "only-in-0@example.com"}}},
        )
        assert created.status_code == 201, created.text
        new_id = created.json()["data"]["id"]
    with http_client_for(three, key=three.api_key_of(1)) as a1:
        assert a1.get(f"/api/profiles/{new_id}").status_code == 404
        assert new_id not in profile_ids(a1)


def test_daily_caps_are_counted_per_account(three: EmulatorServer) -> None:
    with http_client_for(three, key=three.api_key_of(0)) as a0:
        assert a0.get("/api/accounts").status_code == 200
        refused = a0.get("/api/accounts")
        assert refused.status_code == 429, refused.text
        assert "daily quota" in refused.json()["errors"][0]["detail"]
    with http_client_for(three, key=three.api_key_of(2)) as a2:
        answered = a2.get("/api/accounts")
        assert answered.status_code == 200, answered.text
        assert a2.get("/api/accounts").status_code == 429


def campaign_report(client: httpx.Client) -> httpx.Response:
    metrics = client.get("/api/metrics")
    assert metrics.status_code == 200, metrics.text
    placed = {m["attributes"]["name"]: m["id"] for m in metrics.json()["data"]}["Placed Order"]
    body = {"data": {"type": "campaign-values-report", "attributes": {
        "statistics": ["recipients"], "timeframe": {"key": "last_30_days"},
        "conversion_metric_id": placed}}}  # fmt: skip
    return client.post("/api/campaign-values-reports", json=body)


def test_rate_limit_windows_are_separate_per_account() -> None:
    # campaign values reports: 1/s burst, 2/m steady at the spec's limits
    config = EmulatorConfig(seed=SEED, profiles=5, events=20, accounts=2)
    with EmulatorServer(config) as server:
        with http_client_for(server, key=server.api_key_of(0)) as a0:
            assert campaign_report(a0).status_code == 200
            assert campaign_report(a0).status_code == 429
        with http_client_for(server, key=server.api_key_of(1)) as a1:
            answered = campaign_report(a1)
            assert answered.status_code == 200, answered.text
            assert answered.headers["ratelimit-remaining"] == "1"
        stats = httpx.get(f"{server.base_url}/_emulator/stats").json()
    by_account = {a["account"]: a for a in stats["accounts"]}
    report = "query_campaign_values"
    assert by_account[0]["operations"][report]["throttled"] == 1
    assert by_account[1]["operations"][report]["throttled"] == 0
    assert by_account[1]["operations"][report]["requests"] == 1
    # the top level keeps its shape and speaks for account 0
    assert stats["operations"][report] == by_account[0]["operations"][report]
    assert stats["throttled"] == by_account[0]["throttled"] == 1


def mint(server: EmulatorServer, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{server.base_url}/_emulator/keys", json=body)


def test_keys_are_minted_for_the_account_asked_for(three: EmulatorServer) -> None:
    minted = mint(three, {"account": 2, "scopes": ["profiles:read"]})
    assert minted.status_code == 201, minted.text
    assert minted.json()["account"] == 2
    with (
        http_client_for(three, key=minted.json()["key"]) as scoped,
        http_client_for(three, key=three.api_key_of(2)) as full,
    ):
        assert profile_ids(scoped) == profile_ids(full)
        assert scoped.get("/api/lists").status_code == 403
    default = mint(three, {"scopes": ["profiles:read"]})
    assert default.status_code == 201
    assert default.json()["account"] == 0
    with (
        http_client_for(three, key=default.json()["key"]) as scoped,
        http_client_for(three, key=three.api_key_of(0)) as full,
    ):
        assert profile_ids(scoped) == profile_ids(full)


@pytest.mark.parametrize("account", [3, -1, "one", True, 1.5])
def test_keys_refuse_an_account_out_of_range(three: EmulatorServer, account: object) -> None:
    refused = mint(three, {"account": account, "scopes": ["profiles:read"]})
    assert refused.status_code == 400
    assert refused.json() == {
        "error": '"account" must be an account number from 0 to 2 (the emulator serves 3 accounts)'
    }


def test_one_account_is_the_default_and_refuses_account_1() -> None:
    with EmulatorServer(EmulatorConfig(profiles=0, events=0, rate_limit_factor=None)) as server:
        assert server.accounts.count == 1
        assert mint(server, {"account": 0, "scopes": []}).status_code == 201
        refused = mint(server, {"account": 1, "scopes": []})
        assert refused.status_code == 400
        assert "from 0 to 0" in refused.json()["error"]
        stats = httpx.get(f"{server.base_url}/_emulator/stats").json()
        assert [a["account"] for a in stats["accounts"]] == [0]


def test_accounts_are_generated_on_first_use(three: EmulatorServer) -> None:
    truth = httpx.get(f"{three.base_url}/_emulator/truth", params={"account": "1"})
    assert truth.status_code == 200
    assert three.accounts.is_built(1)
    lazy = EmulatorConfig(seed=SEED, profiles=5, events=20, accounts=4, rate_limit_factor=None)
    with EmulatorServer(lazy) as server:
        assert [server.accounts.is_built(i) for i in range(4)] == [True, False, False, False]
        with http_client_for(server, key=server.api_key_of(3)) as a3:
            assert a3.get("/api/accounts").status_code == 200
        assert [server.accounts.is_built(i) for i in range(4)] == [True, False, False, True]


def test_reset_and_clearing_stats_reach_every_account() -> None:
    config = EmulatorConfig(seed=SEED, profiles=4, events=10, accounts=2, rate_limit_factor=None)
    with EmulatorServer(config) as server, http_client_for(server, key=server.api_key_of(1)) as a1:
        before = profile_ids(a1)
        created = a1.post(
            "/api/profiles",
            json={"data": {"type": "profile", "attributes": {"email": "in-1@example.com"}}},
        )
        assert created.status_code == 201, created.text
        assert profile_ids(a1) == before | {created.json()["data"]["id"]}
        admin = f"{server.base_url}/_emulator"
        assert httpx.post(f"{admin}/reset").status_code == 200
        assert profile_ids(a1) == before
        assert httpx.delete(f"{admin}/stats").status_code == 204
        (_, one) = httpx.get(f"{admin}/stats").json()["accounts"]
        assert one["requests"] == 0
