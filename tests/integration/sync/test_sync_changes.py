"""Changes between runs: creates and updates arrive incrementally, removals are swept,
deletions are reconciled — on an account this module alone mutates."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from kbridge import sync
from kbridge.emulator.config import EmulatorConfig
from kbridge.emulator.server import EmulatorServer
from kbridge.testing.plugin import http_client_for
from kbridge.warehouse.duckdb import DuckDBWarehouse

from .conftest import client_for

pytestmark = pytest.mark.integration

STREAMS = ["profiles", "lists", "list_memberships", "events", "metrics"]


@pytest.fixture
def account() -> Iterator[tuple[EmulatorServer, httpx.Client]]:
    config = EmulatorConfig(seed=11, profiles=60, events=600, rate_limit_factor=None)
    with EmulatorServer(config) as server, http_client_for(server) as http:
        yield server, http


def run(server: EmulatorServer, wh: DuckDBWarehouse, **kwargs: Any) -> sync.SyncResult:
    async def go() -> sync.SyncResult:
        async with client_for(server) as client:
            return await sync.run(client, wh, **kwargs)

    return asyncio.run(go())


def post(http: httpx.Client, path: str, body: Any) -> Any:
    response = http.post(path, json=body, headers={"content-type": "application/vnd.api+json"})
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


def test_creates_and_updates_between_runs_arrive_and_nothing_else_is_read(
    account: tuple[EmulatorServer, httpx.Client],
) -> None:
    server, http = account
    wh = DuckDBWarehouse(":memory:")
    run(server, wh, streams=STREAMS)
    profiles_before = wh.query("SELECT count(*) FROM profiles")[0][0]
    events_before = wh.query("SELECT count(*) FROM events")[0][0]

    created = post(
        http,
        "/api/profiles",
        {
            "data": {
                "type": "profile",
                "attributes": {
                    "email": "new.person@example.com",
                    "properties": {"a_brand_new_field": {"x": 1}},
                },
            }
        },
    )["data"]["id"]
    victim = wh.query("SELECT id FROM profiles ORDER BY id LIMIT 1")[0][0]
    patched = http.patch(
        f"/api/profiles/{victim}",
        json={"data": {"type": "profile", "id": victim, "attributes": {"first_name": "Renamed"}}},
        headers={"content-type": "application/vnd.api+json"},
    )
    assert patched.status_code == 200, patched.text
    post(
        http,
        "/api/events",
        {
            "data": {
                "type": "event",
                "attributes": {
                    "properties": {"value": 12.5},
                    "metric": {
                        "data": {"type": "metric", "attributes": {"name": "Brand New Metric"}}
                    },
                    "profile": {"data": {"type": "profile", "id": created}},
                },
            }
        },
    )
    list_id = wh.query("SELECT id FROM lists ORDER BY id LIMIT 1")[0][0]
    post(
        http,
        f"/api/lists/{list_id}/relationships/profiles",
        {"data": [{"type": "profile", "id": created}]},
    )

    # no lookback, so what was read is exactly what changed (test_sync_lookback covers it)
    result = run(server, wh, streams=STREAMS, lookback=timedelta(0))

    assert wh.query("SELECT count(*) FROM profiles")[0][0] == profiles_before + 1
    assert wh.query("SELECT first_name FROM profiles WHERE id = ?", [victim]) == [("Renamed",)]
    assert wh.query(
        "SELECT json_extract_string(properties, '$.a_brand_new_field.x') FROM profiles"
        " WHERE id = ?",
        [created],
    ) == [("1",)]
    assert wh.query("SELECT count(*) FROM events")[0][0] == events_before + 1
    assert wh.query(
        "SELECT m.name FROM events e JOIN metrics m ON m.id = e.metric_id WHERE e.profile_id = ?",
        [created],
    ) == [("Brand New Metric",)]
    assert wh.query(
        "SELECT count(*) FROM list_memberships WHERE list_id = ? AND profile_id = ?",
        [list_id, created],
    ) == [(1,)]
    # incremental: the profiles stream re-read only the changed records (and same-second ties)
    assert result.streams["profiles"].records <= 5
    assert result.streams["events"].records <= 5


def test_removed_members_are_swept_and_reconcile_deletes_what_klaviyo_deleted(
    account: tuple[EmulatorServer, httpx.Client],
) -> None:
    server, http = account
    wh = DuckDBWarehouse(":memory:")
    run(server, wh, streams=STREAMS)
    list_id, member = wh.query(
        "SELECT list_id, profile_id FROM list_memberships ORDER BY 1, 2 LIMIT 1"
    )[0]
    removed = http.request(
        "DELETE",
        f"/api/lists/{list_id}/relationships/profiles",
        json={"data": [{"type": "profile", "id": member}]},
        headers={"content-type": "application/vnd.api+json"},
    )
    assert removed.status_code == 204, removed.text
    doomed = wh.query(
        "SELECT list_id FROM list_memberships WHERE list_id <> ? GROUP BY 1 ORDER BY 1 LIMIT 1",
        [list_id],
    )[0][0]
    assert http.delete(f"/api/lists/{doomed}").status_code == 204
    lists_before = wh.query("SELECT count(*) FROM lists")[0][0]

    run(server, wh, streams=STREAMS)
    assert wh.query(
        "SELECT count(*) FROM list_memberships WHERE list_id = ? AND profile_id = ?",
        [list_id, member],
    ) == [(0,)]
    # memberships of the deleted list are swept with the refresh; the list row needs reconcile
    assert wh.query("SELECT count(*) FROM list_memberships WHERE list_id = ?", [doomed]) == [(0,)]
    assert wh.query("SELECT count(*) FROM lists")[0][0] == lists_before

    run(server, wh, streams=["lists"], reconcile=True)
    assert wh.query("SELECT count(*) FROM lists WHERE id = ?", [doomed]) == [(0,)]
    assert wh.query("SELECT count(*) FROM lists")[0][0] == lists_before - 1
    assert wh.query("SELECT count(*) FROM _kbridge_seen") == [(0,)]


def test_full_refresh_reads_everything_again_without_duplicating(
    account: tuple[EmulatorServer, httpx.Client],
) -> None:
    server, _ = account
    wh = DuckDBWarehouse(":memory:")
    first = run(server, wh, streams=["profiles", "events"])
    counts = wh.query("SELECT (SELECT count(*) FROM profiles), (SELECT count(*) FROM events)")
    again = run(server, wh, streams=["profiles", "events"], full_refresh=True)
    assert again.streams["events"].records == first.streams["events"].records
    assert again.streams["profiles"].records == first.streams["profiles"].records
    assert (
        wh.query("SELECT (SELECT count(*) FROM profiles), (SELECT count(*) FROM events)") == counts
    )


def test_reconcile_removes_a_deleted_campaign_with_its_messages(
    account: tuple[EmulatorServer, httpx.Client],
) -> None:
    server, http = account
    wh = DuckDBWarehouse(":memory:")
    run(server, wh, streams=["campaigns"])
    campaign, messages = wh.query(
        "SELECT campaign_id, count(*) FROM campaign_messages GROUP BY 1 ORDER BY 1 LIMIT 1"
    )[0]
    assert messages > 0
    total = wh.query("SELECT count(*) FROM campaigns")[0][0]
    deleted = http.delete(f"/api/campaigns/{campaign}")
    assert deleted.status_code == 204, deleted.text

    run(server, wh, streams=["campaigns"], reconcile=True)
    assert wh.query("SELECT count(*) FROM campaigns WHERE id = ?", [campaign]) == [(0,)]
    assert wh.query("SELECT count(*) FROM campaign_messages WHERE campaign_id = ?", [campaign]) == [
        (0,)
    ]
    assert wh.query("SELECT count(*) FROM campaigns")[0][0] == total - 1
