"""Suppressions, tag groups and images from the emulator into DuckDB.

The warehouse is compared with what the API serves, read with a plain HTTP client
(never kbridge's own reads): the same ids, counts and attributes. Suppressions are
the compliance export (who may not be emailed, why, since when); a suppression lifted
in Klaviyo leaves the table on the next ``--reconcile`` run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kbridge import sync
from kbridge.core import loads
from kbridge.emulator.config import EmulatorConfig
from kbridge.emulator.server import EmulatorServer
from kbridge.testing.plugin import http_client_for
from kbridge.warehouse.duckdb import DuckDBWarehouse

from .conftest import api_all, client_for

pytestmark = pytest.mark.integration

STREAMS = ["suppressions", "tag_groups", "images"]


@pytest.fixture
def account() -> Iterator[tuple[EmulatorServer, httpx.Client]]:
    config = EmulatorConfig(seed=5, profiles=80, events=200, rate_limit_factor=None)
    with EmulatorServer(config) as server, http_client_for(server) as http:
        yield server, http


def run(server: EmulatorServer, wh: DuckDBWarehouse, **kwargs: Any) -> sync.SyncResult:
    async def go() -> sync.SyncResult:
        async with client_for(server) as client:
            return await sync.run(client, wh, **kwargs)

    return asyncio.run(go())


def served_suppressed(http: httpx.Client) -> dict[str, dict[str, Any]]:
    """Every profile with an email suppression of either kind, from the whole listing."""
    params = {"additional-fields[profile]": "subscriptions", "page[size]": "100"}
    out = {}
    for p in api_all(http, "/api/profiles", params):
        marketing = p["attributes"]["subscriptions"]["email"]["marketing"]
        if marketing["suppression"] or marketing["list_suppressions"]:
            out[p["id"]] = p
    return out


def ids(wh: DuckDBWarehouse, table: str) -> set[str]:
    return {i for (i,) in wh.query(f"SELECT id FROM {table}")}  # noqa: S608


def iso(value: Any) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%S")


def test_suppressions_hold_every_suppressed_profile_with_reason_and_time(
    account: tuple[EmulatorServer, httpx.Client],
) -> None:
    server, http = account
    wh = DuckDBWarehouse(":memory:")
    result = run(server, wh, streams=STREAMS)
    served = served_suppressed(http)
    assert any(p["attributes"]["subscriptions"]["email"]["marketing"]["suppression"]
               for p in served.values())  # fmt: skip
    assert ids(wh, "suppressions") == set(served)
    rows = wh.query(
        "SELECT id, email, suppressed, reason, suppressed_at, CAST(suppression AS VARCHAR),"
        " CAST(list_suppressions AS VARCHAR), sms_consent FROM suppressions"
    )
    for pid, email, suppressed, reason, at, entries, lists, sms in rows:
        attrs = served[pid]["attributes"]
        marketing = attrs["subscriptions"]["email"]["marketing"]
        assert email == attrs["email"]
        assert loads(entries) == marketing["suppression"]
        assert loads(lists) == marketing["list_suppressions"]
        assert suppressed is bool(marketing["suppression"])
        latest = max(marketing["suppression"], key=lambda e: e["timestamp"], default=None)
        assert reason == (latest and latest["reason"])
        assert iso(at) == (latest and latest["timestamp"][:19])
        assert sms == attrs["subscriptions"]["sms"]["marketing"]["consent"]
    # a profile in both partitions is one row
    assert result.streams["suppressions"].records >= len(served)


def test_tag_groups_and_images_hold_what_the_api_serves(
    account: tuple[EmulatorServer, httpx.Client],
) -> None:
    server, http = account
    wh = DuckDBWarehouse(":memory:")
    result = run(server, wh, streams=STREAMS)
    for stream, path in {"tag_groups": "/api/tag-groups", "images": "/api/images"}.items():
        served = {r["id"]: r for r in api_all(http, path)}
        assert served, stream
        assert ids(wh, stream) == set(served), stream
        assert result.streams[stream].records == len(served)
        raws = wh.query(f"SELECT id, CAST(raw AS VARCHAR) FROM {stream}")  # noqa: S608
        assert {i: loads(r) for i, r in raws} == {i: r["attributes"] for i, r in served.items()}


def _job(http: httpx.Client, kind: str, email: str) -> None:
    body = {"data": {"type": kind, "attributes": {"profiles": {"data": [
        {"type": "profile", "attributes": {"email": email}}]}}}}  # fmt: skip
    path = f"/api/{kind}s"
    response = http.post(path, json=body)
    assert response.status_code == 202, response.text
    http.post("/_emulator/clock", json={"advance_seconds": 120})


def test_a_lifted_suppression_leaves_and_a_new_one_arrives(
    account: tuple[EmulatorServer, httpx.Client],
) -> None:
    server, http = account
    wh = DuckDBWarehouse(":memory:")
    run(server, wh, streams=["suppressions"])
    before = served_suppressed(http)
    clean = [
        p for p in api_all(http, "/api/profiles", {"page[size]": "100"})
        if p["id"] not in before and p["attributes"]["email"]
    ]  # fmt: skip
    first, second = clean[0], clean[1]
    _job(http, "profile-suppression-bulk-create-job", first["attributes"]["email"])
    run(server, wh, streams=["suppressions"])
    assert wh.query("SELECT reason FROM suppressions WHERE id = ?", (first["id"],)) == [
        ("USER_SUPPRESSED",)
    ]

    _job(http, "profile-suppression-bulk-delete-job", first["attributes"]["email"])
    _job(http, "profile-suppression-bulk-create-job", second["attributes"]["email"])
    run(server, wh, streams=["suppressions"], reconcile=True)
    assert ids(wh, "suppressions") == set(served_suppressed(http))
    assert first["id"] not in ids(wh, "suppressions")
    assert second["id"] in ids(wh, "suppressions")
    assert wh.query("SELECT count(*) FROM _kbridge_seen") == [(0,)]
