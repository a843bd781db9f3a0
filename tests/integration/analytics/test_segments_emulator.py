"""Consent and RFM on a synced emulator account, judged by the emulator itself.

The account is synced into DuckDB by kbridge; the answers are compared with the
emulator's ground truth (``/_emulator/truth``: each profile's orders and revenue)
and with what its API serves, read with a plain HTTP client, never kbridge's.
A segment pushed with ``kbridge analytics rfm --push`` must then be exactly the
members the emulator lists.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from kbridge import sync
from kbridge.analytics import RFM, Consent, consent, rfm
from kbridge.api import AsyncClient
from kbridge.core import ManualClock, loads
from kbridge.emulator.config import EmulatorConfig
from kbridge.emulator.server import EmulatorServer
from kbridge.testing.plugin import http_client_for
from kbridge.warehouse import open_warehouse
from tests.e2e.test_cli import run

pytestmark = pytest.mark.integration

ACCOUNT_CONFIG = EmulatorConfig(seed=11, profiles=150, events=4000, rate_limit_factor=None)
#: per-profile revenue: the truth rounds to cents, the warehouse sums event values
REVENUE_TOLERANCE = 0.011


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(ACCOUNT_CONFIG) as s:
        yield s


@pytest.fixture(scope="module")
def http(server: EmulatorServer) -> Iterator[httpx.Client]:
    with http_client_for(server) as client:
        yield client


@pytest.fixture(scope="module")
def warehouse_url(server: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"duckdb:///{tmp_path_factory.mktemp('segments') / 'wh.duckdb'}"

    async def go() -> None:
        async with AsyncClient(
            server.api_key, base_url=server.base_url, clock=ManualClock()
        ) as client:
            result = await sync.run(client, url, streams=["profiles", "metrics", "events"])
            assert result.ok, result.to_dict()

    asyncio.run(go())
    return url


@pytest.fixture(scope="module")
def analyses(warehouse_url: str, http: httpx.Client) -> tuple[str, RFM, Consent]:
    wh = open_warehouse(warehouse_url)
    try:
        account = str(wh.query("SELECT DISTINCT account_id FROM profiles")[0][0])
        return account, rfm(wh, account), consent(wh, account, months=24)
    finally:
        wh.close()


def api_all(http: httpx.Client, path: str, params: dict[str, Any] | None = None) -> list[Any]:
    out: list[Any] = []
    response = http.get(path, params=params or {})
    while True:
        response.raise_for_status()
        body = response.json()
        out.extend(body["data"])
        nxt = body.get("links", {}).get("next")
        if not nxt:
            return out
        response = http.get(nxt)


def test_rfm_frequency_and_value_match_the_ground_truth(
    analyses: tuple[str, RFM, Consent], http: httpx.Client
) -> None:
    _, result, _ = analyses
    truth = http.get("/_emulator/truth").json()["profiles"]
    buyers = {pid: t for pid, t in truth.items() if t["orders"] > 0}
    got = {r["profile_id"]: r for r in result.profiles.records()}
    assert len(buyers) > 30, "too few buyers for the comparison to mean anything"
    assert set(got) == set(buyers)
    for pid, t in buyers.items():
        assert got[pid]["frequency"] == t["orders"], pid
        assert got[pid]["monetary"] == pytest.approx(t["revenue"], abs=REVENUE_TOLERANCE), pid
    total = sum(t["revenue"] for t in buyers.values())
    assert result.segments.notes["revenue"] == pytest.approx(total, abs=0.01 * len(buyers))
    assert sum(result.segments.column("profiles")) == len(buyers)


def test_rfm_recency_separates_the_churned_from_the_rest(
    analyses: tuple[str, RFM, Consent], http: httpx.Client
) -> None:
    """Churned buyers stop ordering, so they score lower on recency on average (the model's
    churn is hidden: the analysis never sees it)."""
    _, result, _ = analyses
    truth = http.get("/_emulator/truth").json()["profiles"]
    r_of = dict(zip(result.profiles.column("profile_id"), result.profiles.column("r"), strict=True))
    churned = [r for pid, r in r_of.items() if truth[pid]["churned"]]
    kept = [r for pid, r in r_of.items() if not truth[pid]["churned"]]
    assert churned
    assert kept
    # stated tolerance: at least one quintile apart on average
    assert sum(kept) / len(kept) - sum(churned) / len(churned) >= 1.0


def largest_segment_push(
    result: RFM, warehouse_url: str, server: EmulatorServer, list_name: str
) -> tuple[str, set[str], tuple[str, ...]]:
    """The largest segment, its profiles, and the CLI arguments that push it to a list."""
    segment = max(result.segment_names(), key=lambda s: len(result.members(s)))
    args = ("analytics", "rfm", "--from", warehouse_url, "--push", segment.lower(),
            "--list-name", list_name, "--api-key", server.api_key,
            "--base-url", server.base_url, "--output", "json")  # fmt: skip
    return segment, set(result.members(segment)), args


def test_pushing_a_segment_fills_a_list_with_exactly_its_profiles(
    analyses: tuple[str, RFM, Consent],
    warehouse_url: str,
    server: EmulatorServer,
    http: httpx.Client,
) -> None:
    segment, expected, args = largest_segment_push(analyses[1], warehouse_url, server, "Test push")
    assert len(expected) >= 5
    first = run(*args)
    assert first.returncode == 0, first.stderr
    summary = loads(first.stdout)["summary"]
    assert summary["pushed_segment"] == segment
    assert summary["list_created"] is True
    assert summary["pushed_profiles"] == len(expected)
    list_id = summary["list_id"]
    lists = api_all(http, "/api/lists", {"filter": "any(name,['Test push'])"})
    assert [x["id"] for x in lists] == [list_id]
    members = {p["id"] for p in api_all(http, f"/api/lists/{list_id}/profiles")}
    assert members == expected

    again = run(*args)
    assert again.returncode == 0, again.stderr
    summary = loads(again.stdout)["summary"]
    assert (summary["list_id"], summary["list_created"]) == (list_id, False)
    assert len(api_all(http, "/api/lists", {"filter": "any(name,['Test push'])"})) == 1
    assert {p["id"] for p in api_all(http, f"/api/lists/{list_id}/profiles")} == expected
    as_table = run(*args[:-1], "table")
    assert as_table.returncode == 0, as_table.stderr
    assert "list_created: no" in as_table.stdout
    assert f"pushed_profiles: {len(expected)}" in as_table.stdout


def test_prune_removes_the_members_who_are_not_in_the_segment(
    analyses: tuple[str, RFM, Consent],
    warehouse_url: str,
    server: EmulatorServer,
    http: httpx.Client,
) -> None:
    _, expected, args = largest_segment_push(analyses[1], warehouse_url, server, "Test prune")
    outsiders = [p["id"] for p in api_all(http, "/api/profiles") if p["id"] not in expected][:2]

    def members(list_id: str) -> set[str]:
        return {p["id"] for p in api_all(http, f"/api/lists/{list_id}/profiles")}

    first = run(*args, "--prune")  # a new list: nothing to prune
    assert first.returncode == 0, first.stderr
    summary = loads(first.stdout)["summary"]
    list_id = summary["list_id"]
    assert (summary["list_created"], summary["removed_profiles"]) == (True, 0)
    # two profiles outside the segment join the list (by hand, or from an older push)
    added = http.post(f"/api/lists/{list_id}/relationships/profiles",
                      json={"data": [{"type": "profile", "id": i} for i in outsiders]})  # fmt: skip
    assert added.status_code == 204, added.text
    assert members(list_id) == expected | set(outsiders)

    kept = run(*args)  # without --prune members are only added
    assert kept.returncode == 0, kept.stderr
    assert "removed_profiles" not in loads(kept.stdout)["summary"]
    assert members(list_id) == expected | set(outsiders)

    pruned = run(*args, "--prune")
    assert pruned.returncode == 0, pruned.stderr
    assert loads(pruned.stdout)["summary"]["removed_profiles"] == 2
    assert members(list_id) == expected
    again = run(*args, "--prune")
    assert loads(again.stdout)["summary"]["removed_profiles"] == 0

    alone = run("analytics", "rfm", "--from", warehouse_url, "--prune")
    assert alone.returncode == 1
    assert alone.stderr.startswith("error: --prune needs --push SEGMENT")


def test_push_problems_are_one_line(warehouse_url: str, server: EmulatorServer) -> None:
    unknown = run("analytics", "rfm", "--from", warehouse_url, "--push", "VIP",
                  "--api-key", server.api_key, "--base-url", server.base_url)  # fmt: skip
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("error: no RFM segment 'VIP'; segments: Champions")
    bad_key = run("analytics", "rfm", "--from", warehouse_url, "--push", "Champions",
                  "--api-key", "pk_wrong", "--base-url", server.base_url)  # fmt: skip
    assert bad_key.returncode == 1
    assert bad_key.stderr.startswith("error: ")
    assert "pk_wrong" not in bad_key.stderr
    no_key = run("analytics", "rfm", "--from", warehouse_url, "--push", "Champions",
                 "--base-url", server.base_url)  # fmt: skip
    assert no_key.returncode == 1
    for r in (unknown, bad_key, no_key):
        assert "Traceback" not in r.stderr


def _seconds(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_consent_now_is_what_the_api_says(
    analyses: tuple[str, RFM, Consent], http: httpx.Client
) -> None:
    _, _, result = analyses
    profiles = api_all(http, "/api/profiles", {"additional-fields[profile]": "subscriptions"})
    for channel in ("email", "sms"):
        marketing = [p["attributes"]["subscriptions"][channel]["marketing"] for p in profiles]
        states = Counter(m["consent"] for m in marketing)
        suppressed = Counter(m["consent"] for m in marketing if m.get("suppression"))
        reasons = Counter(s["reason"] for m in marketing for s in m.get("suppression") or [])
        rows = [r for r in result.current.records() if r["channel"] == channel]
        assert {r["state"]: r["profiles"] for r in rows} == {
            s: states[s] for s in ("SUBSCRIBED", "UNSUBSCRIBED", "NEVER_SUBSCRIBED")
        }
        assert {r["state"]: r["suppressed"] for r in rows if r["suppressed"]} == dict(suppressed)
        assert {
            r["reason"]: r["profiles"] for r in result.suppressions.records()
            if r["channel"] == channel
        } == dict(reasons)  # fmt: skip
        reachable = sum(1 for m in marketing if m.get(f"can_receive_{channel}_marketing"))
        assert result.current.notes[f"{channel}_reachable"] == reachable
    email = Counter(
        p["attributes"]["subscriptions"]["email"]["marketing"]["consent"] for p in profiles
    )
    # the generator's stated shares (≈ 60 / 20 / 20 %) hold within ±12 points on 150 profiles
    n = len(profiles)
    assert abs(email["SUBSCRIBED"] / n - 0.6) < 0.12
    assert abs(email["UNSUBSCRIBED"] / n - 0.2) < 0.12


def test_consent_month_ends_follow_the_consent_timestamps(
    analyses: tuple[str, RFM, Consent], http: httpx.Client
) -> None:
    """The emulator's consent happens once per profile, at its consent timestamp (its events
    say the same), so each month end counts the profiles whose timestamp came before it."""
    _, _, result = analyses
    profiles = api_all(http, "/api/profiles", {"additional-fields[profile]": "subscriptions"})
    months = [r for r in result.monthly.records() if r["channel"] == "email"]
    assert len(months) == 24
    for row in months[:-1]:
        y, m = map(int, str(row["month"]).split("-"))
        end = datetime(y + m // 12, m % 12 + 1, 1, tzinfo=UTC).timestamp()
        alive = [p["attributes"] for p in profiles if _seconds(p["attributes"]["created"]) < end]
        changed = Counter(
            m["consent"]
            for m in (a["subscriptions"]["email"]["marketing"] for a in alive)
            if m["consent_timestamp"] is not None and _seconds(m["consent_timestamp"]) < end
        )
        sub, unsub = changed["SUBSCRIBED"], changed["UNSUBSCRIBED"]
        assert (row["profiles"], row["subscribed"], row["unsubscribed"]) == (
            len(alive),
            sub,
            unsub,
        ), row["month"]
        assert row["never_subscribed"] == len(alive) - sub - unsub
    # the history is not the present copied back: the account grew over the two years
    assert months[0]["profiles"] < months[-1]["profiles"]
    assert 0 < months[0]["subscribed"] < months[-1]["subscribed"]
    last = {r["state"]: r["profiles"] for r in result.current.records() if r["channel"] == "email"}
    assert months[-1]["subscribed"] == last["SUBSCRIBED"]
    assert months[-1]["unsubscribed"] == last["UNSUBSCRIBED"]
