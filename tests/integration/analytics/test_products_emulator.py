"""Top products on a synced emulator account, judged by the emulator itself.

The account (events and its catalogue) is synced into DuckDB by kbridge; the
answers are compared with the order lines and catalogue items its API serves,
read with a plain HTTP client, never kbridge's, and with its ground truth
(``/_emulator/truth``: each profile's revenue). One order line for a product the
catalogue does not hold is added first, so the unmatched count has something to find.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kbridge import sync
from kbridge.analytics import Products, rfm, top_products
from kbridge.api import AsyncClient
from kbridge.core import ManualClock
from kbridge.emulator.config import EmulatorConfig
from kbridge.emulator.server import EmulatorServer
from kbridge.testing.plugin import http_client_for
from kbridge.warehouse import open_warehouse
from tests.integration.sync.conftest import api_all

pytestmark = pytest.mark.integration

CONFIG = EmulatorConfig(seed=11, profiles=150, events=4000, rate_limit_factor=None)
STREAMS = ["profiles", "metrics", "events", "catalog_items", "catalog_variants"]
ALL = 1000  # more products than the vocabulary has: every one is listed


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(CONFIG) as s:
        yield s


@pytest.fixture(scope="module")
def http(server: EmulatorServer) -> Iterator[httpx.Client]:
    with http_client_for(server) as client:
        yield client


@pytest.fixture(scope="module")
def stray(http: httpx.Client) -> str:
    """A customer's order line for a product that is not in the catalogue; its profile id."""
    truth = http.get("/_emulator/truth").json()["profiles"]
    buyer = next(pid for pid, t in sorted(truth.items()) if t["orders"])
    body = {
        "data": {
            "type": "event",
            "attributes": {
                "properties": {"ProductID": "retired-9", "ProductName": "Retired Mug", "$value": 7},
                "metric": {"data": {"type": "metric", "attributes": {"name": "Ordered Product"}}},
                "profile": {"data": {"type": "profile", "id": buyer}},
            },
        }
    }
    assert http.post("/api/events", json=body).status_code == 202
    return buyer


@pytest.fixture(scope="module")
def result(
    server: EmulatorServer, stray: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Products, dict[str, str], dict[str, float]]:
    """Top products of every product, the RFM segment of each customer and its revenue."""
    url = f"duckdb:///{tmp_path_factory.mktemp('products') / 'wh.duckdb'}"

    async def go() -> None:
        async with AsyncClient(
            server.api_key, base_url=server.base_url, clock=ManualClock()
        ) as client:
            synced = await sync.run(client, url, streams=STREAMS)
            assert synced.ok, synced.to_dict()

    asyncio.run(go())
    wh = open_warehouse(url)
    try:
        account = str(wh.query("SELECT DISTINCT account_id FROM profiles")[0][0])
        products = top_products(wh, account, top=ALL)
        segments = rfm(wh, account, as_of=products.as_of)
    finally:
        wh.close()
    segment_of = dict(
        zip(
            segments.profiles.column("profile_id"), segments.profiles.column("segment"), strict=True
        )
    )
    revenue_of = dict(
        zip(segments.segments.column("segment"), segments.segments.column("revenue"), strict=True)
    )
    return products, segment_of, revenue_of


def served_lines(http: httpx.Client) -> list[dict[str, Any]]:
    metrics = {m["attributes"]["name"]: m["id"] for m in api_all(http, "/api/metrics")}
    lines = api_all(
        http, "/api/events", {"filter": f'equals(metric_id,"{metrics["Ordered Product"]}")'}
    )
    assert len(lines) > 100, "too few order lines for the comparison to mean anything"
    return lines


def test_every_product_matches_the_lines_and_catalogue_the_api_serves(
    result: tuple[Products, dict[str, str], dict[str, float]], http: httpx.Client
) -> None:
    products, _, _ = result
    titles = {
        i["attributes"]["external_id"]: (i["id"], i["attributes"]["title"])
        for i in api_all(http, "/api/catalog-items")
    }
    expected: dict[str, list[Any]] = defaultdict(lambda: [0, 0.0, set()])
    for e in served_lines(http):
        props = e["attributes"]["event_properties"]
        t = expected[props["ProductID"]]
        t[0] += 1
        t[1] += float(props["$value"])
        t[2].add(e["relationships"]["profile"]["data"]["id"])
    got = {r["product_id"]: r for r in products.overall.records()}
    assert set(got) == set(expected)
    for product, (lines, revenue, customers) in expected.items():
        row = got[product]
        assert (row["lines"], row["customers"]) == (lines, len(customers)), product
        assert row["revenue"] == pytest.approx(revenue, abs=0.01), product
        if product == "retired-9":
            assert (row["in_catalogue"], row["item_id"], row["name"]) == (
                False,
                None,
                "Retired Mug",
            )
        else:
            assert row["in_catalogue"], product
            assert (row["item_id"], row["name"]) == titles[product]
    revenues = products.overall.column("revenue")
    assert revenues == sorted(revenues, reverse=True)
    n = products.overall.notes
    assert (n["unmatched_lines"], n["unmatched_revenue"]) == (1, 7.0)
    assert n["matched_lines"] == n["lines"] - 1 == sum(v[0] for v in expected.values()) - 1


def test_segment_revenue_is_what_the_segments_ordered(
    result: tuple[Products, dict[str, str], dict[str, float]], http: httpx.Client
) -> None:
    """Each generated order's value is the sum of its lines, so a segment's product revenue
    is its customers' order revenue (the ground truth's), bar the one stray line."""
    products, segment_of, revenue_of = result
    truth = http.get("/_emulator/truth").json()["profiles"]
    expected: dict[str, float] = defaultdict(float)
    for pid, segment in segment_of.items():
        expected[segment] += truth[pid]["revenue"]
    got = products.by_segment.notes["segment_revenue"]
    stray_segment = segment_of[next(p for p, t in sorted(truth.items()) if t["orders"])]
    assert set(got) == {s for s, v in expected.items() if v}
    for segment, revenue in expected.items():
        extra = 7.0 if segment == stray_segment else 0.0
        # the truth rounds each profile's revenue to cents
        assert got.get(segment, 0.0) == pytest.approx(revenue + extra, abs=0.01 * len(truth))
        assert revenue_of[segment] == pytest.approx(revenue, abs=0.01 * len(truth))
    # within a segment, products rank by revenue and shares add up to the whole
    for segment in got:
        rows = [r for r in products.by_segment.records() if r["segment"] == segment]
        assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
        assert sum(r["revenue"] for r in rows) == pytest.approx(got[segment], abs=0.01)
