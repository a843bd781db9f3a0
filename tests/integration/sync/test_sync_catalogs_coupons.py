"""Catalogue and coupon streams from the emulator into DuckDB.

The warehouse is compared with what the API serves, read with a plain HTTP
client (never kbridge's own reads): the same ids, the same counts, the same
attributes; then changes in the account reach it on the next run (deletions
through ``--reconcile``; removed codes swept with their coupon's refresh).
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

STREAMS = [
    "catalog_items", "catalog_variants", "catalog_categories", "catalog_item_categories",
    "coupons", "coupon_codes",
]  # fmt: skip
COLLECTIONS = {
    "catalog_items": "/api/catalog-items",
    "catalog_variants": "/api/catalog-variants",
    "catalog_categories": "/api/catalog-categories",
    "coupons": "/api/coupons",
}


@pytest.fixture
def account() -> Iterator[tuple[EmulatorServer, httpx.Client]]:
    config = EmulatorConfig(seed=5, profiles=60, events=300, rate_limit_factor=None)
    with EmulatorServer(config) as server, http_client_for(server) as http:
        yield server, http


def run(server: EmulatorServer, wh: DuckDBWarehouse, **kwargs: Any) -> sync.SyncResult:
    async def go() -> sync.SyncResult:
        async with client_for(server) as client:
            return await sync.run(client, wh, **kwargs)

    return asyncio.run(go())


def served_codes(http: httpx.Client) -> dict[str, dict[str, Any]]:
    codes: dict[str, dict[str, Any]] = {}
    for coupon in api_all(http, "/api/coupons"):
        for code in api_all(http, f"/api/coupons/{coupon['id']}/coupon-codes"):
            codes[code["id"]] = code
    return codes


def served_links(http: httpx.Client) -> set[tuple[str, str]]:
    return {
        (category["id"], item["id"])
        for category in api_all(http, "/api/catalog-categories")
        for item in api_all(http, f"/api/catalog-categories/{category['id']}/relationships/items")
    }


def links(wh: DuckDBWarehouse) -> set[tuple[str, str]]:
    return set(wh.query("SELECT category_id, item_id FROM catalog_item_categories"))


def ids(wh: DuckDBWarehouse, table: str) -> set[str]:
    return {i for (i,) in wh.query(f"SELECT id FROM {table}")}  # noqa: S608


def test_tables_hold_what_the_api_serves(account: tuple[EmulatorServer, httpx.Client]) -> None:
    server, http = account
    wh = DuckDBWarehouse(":memory:")
    result = run(server, wh, streams=STREAMS)
    for stream, path in COLLECTIONS.items():
        served = {r["id"]: r for r in api_all(http, path)}
        assert served, stream
        assert ids(wh, stream) == set(served), stream
        assert result.streams[stream].records == len(served)
        raws = wh.query(f"SELECT id, CAST(raw AS VARCHAR) FROM {stream}")  # noqa: S608
        assert {i: loads(r) for i, r in raws} == {i: r["attributes"] for i, r in served.items()}
    codes = served_codes(http)
    assert len(codes) > 0
    rows = wh.query("SELECT coupon_id, id, unique_code, status, profile_id FROM coupon_codes")
    assert {r[1]: r for r in rows} == {
        cid: (
            c["relationships"]["coupon"]["data"]["id"],
            cid,
            c["attributes"]["unique_code"],
            c["attributes"]["status"],
            (c["relationships"]["profile"].get("data") or {}).get("id"),
        )
        for cid, c in codes.items()
    }
    variants = api_all(http, "/api/catalog-variants")
    owners = dict(wh.query("SELECT id, item_id FROM catalog_variants"))
    assert owners == {v["id"]: v["relationships"]["item"]["data"]["id"] for v in variants}
    assert links(wh) == served_links(http)
    assert len(links(wh)) == len(ids(wh, "catalog_items"))  # one category per generated item
    # the catalogue joins to the events that name its products
    joined = wh.query(
        "SELECT count(*) FROM catalog_items WHERE external_id = '1000' AND title IS NOT NULL"
    )
    assert joined == [(1,)]


def test_changes_reach_the_warehouse(account: tuple[EmulatorServer, httpx.Client]) -> None:
    server, http = account
    wh = DuckDBWarehouse(":memory:")
    run(server, wh, streams=STREAMS)
    doomed_item = "$custom:::$default:::1001"
    assert http.delete(f"/api/catalog-items/{doomed_item}").status_code == 204
    price = {"data": {"type": "catalog-item", "id": "$custom:::$default:::1002",
                      "attributes": {"price": 1.25}}}  # fmt: skip
    assert http.patch("/api/catalog-items/$custom:::$default:::1002", json=price).is_success
    unassigned = http.get(
        "/api/coupons/WELCOME10/coupon-codes", params={"filter": "equals(status,'UNASSIGNED')"}
    ).json()["data"]
    gone_code = unassigned[0]["id"]
    assert http.delete(f"/api/coupon-codes/{gone_code}").status_code == 204
    moved = {"data": [{"type": "catalog-category", "id": "$custom:::$default:::home"}]}
    path = "/api/catalog-items/$custom:::$default:::1000/relationships/categories"
    assert http.patch(path, json=moved).status_code == 204
    coupon = {"data": {"type": "coupon", "attributes": {"external_id": "NEW5"}}}
    assert http.post("/api/coupons", json=coupon).status_code == 201
    to_coupon = {"coupon": {"data": {"type": "coupon", "id": "NEW5"}}}
    code = {"data": {"type": "coupon-code", "attributes": {"unique_code": "HELLO"},
                     "relationships": to_coupon}}  # fmt: skip
    assert http.post("/api/coupon-codes", json=code).is_success  # (the spec says 200)

    run(server, wh, streams=STREAMS, reconcile=True)
    assert doomed_item not in ids(wh, "catalog_items")
    # the item's variant went with it in Klaviyo, so reconcile takes it out here too
    assert ids(wh, "catalog_variants") == {v["id"] for v in api_all(http, "/api/catalog-variants")}
    assert wh.query("SELECT price FROM catalog_items WHERE id = '$custom:::$default:::1002'") == [
        (1.25,)
    ]
    assert links(wh) == served_links(http)
    assert ("$custom:::$default:::home", "$custom:::$default:::1000") in links(wh)
    assert "NEW5" in ids(wh, "coupons")
    assert ids(wh, "coupon_codes") == set(served_codes(http))
    assert gone_code not in ids(wh, "coupon_codes")
    assert "NEW5-HELLO" in ids(wh, "coupon_codes")
    assert wh.query("SELECT count(*) FROM _kbridge_seen") == [(0,)]


NEW_SCOPES = {"catalogs:read", "coupons:read", "coupon-codes:read"}


def test_a_default_sync_leaves_out_streams_the_key_may_not_read_and_says_which(
    account: tuple[EmulatorServer, httpx.Client],
) -> None:
    """A key made with `kbridge scopes --for sync` before the catalogue streams existed lacks
    their scopes: a default sync syncs the rest and says what the key lacks; asked for by
    name, such a stream is an error."""
    from kbridge.api import AsyncClient
    from kbridge.connections import plan_scopes
    from kbridge.core import ManualClock

    server, http = account
    scopes = sorted(set(plan_scopes(["sync"]).scopes) - NEW_SCOPES)
    minted = http.post("/_emulator/keys", json={"scopes": scopes})
    assert minted.status_code == 201, minted.text
    key = minted.json()["key"]

    def run_with(**kwargs: Any) -> sync.SyncResult:
        async def go() -> sync.SyncResult:
            async with AsyncClient(key, base_url=server.base_url, clock=ManualClock()) as client:
                return await sync.run(client, DuckDBWarehouse(":memory:"), **kwargs)

        return asyncio.run(go())

    everything = run_with(streams=None, start_date=None)
    assert everything.ok, {s: r.error for s, r in everything.streams.items() if r.error}
    assert everything.streams["profiles"].records == 60
    for name in STREAMS:
        note = everything.streams[name].note or ""
        assert "left out: the key lacks" in note, (name, note)
        assert everything.streams[name].records == 0
    assert "catalogs:read" in (everything.streams["catalog_items"].note or "")

    with pytest.raises(sync.SyncError, match="catalog_items"):
        run_with(streams=["profiles", "catalog_items"])
