"""Catalogs and coupons, judged by the schemas in Klaviyo's OpenAPI spec.

A scripted session creates a category, an item in it, a variant, a coupon
and codes (singly and through bulk jobs, one row of each job failing), then
calls every GET of both tags with real ids, plain and with each ``include``.
Every body, the writes' and the errors' included, must validate against the
spec's schema for its status.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kbridge import catalog
from kbridge.catalog import Operation
from kbridge.emulator import EmulatorConfig, EmulatorServer
from kbridge.testing.plugin import http_client_for
from tests.contract.test_conformance_flows_images_tags import check, expect_400, send

pytestmark = pytest.mark.contract

ITEM = "$custom:::$default:::CT-1"
VARIANT = "$custom:::$default:::CT-1-S"
CATEGORY = "$custom:::$default:::ct-shoes"
NOT_EMULATED: set[str] = set()


def item_body(external_id: str, **extra: Any) -> dict[str, Any]:
    attrs = {
        "external_id": external_id,
        "title": f"Item {external_id}",
        "description": "A thing",
        "url": f"https://shop.example.com/{external_id}",
        "price": 10.0,
        **extra,
    }
    return {"type": "catalog-item", "attributes": attrs}


def variant_body(external_id: str, item_id: str) -> dict[str, Any]:
    attrs = {
        "external_id": external_id, "title": "Small", "description": "Small size",
        "sku": external_id, "inventory_quantity": 3, "price": 10.0,
        "url": "https://shop.example.com/v",
    }  # fmt: skip
    return {
        "type": "catalog-variant",
        "attributes": attrs,
        "relationships": {"item": {"data": {"type": "catalog-item", "id": item_id}}},
    }


def code_body(code: str, coupon: str) -> dict[str, Any]:
    return {
        "type": "coupon-code",
        "attributes": {"unique_code": code},
        "relationships": {"coupon": {"data": {"type": "coupon", "id": coupon}}},
    }


def bulk(job_type: str, plural: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"data": {"type": job_type, "attributes": {plural: {"data": rows}}}}


@pytest.fixture(scope="module")
def session() -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    config = EmulatorConfig(seed=12, profiles=30, events=300, rate_limit_factor=None)
    with EmulatorServer(config) as server, http_client_for(server) as http:
        ids: dict[str, str] = {}
        category = {"type": "catalog-category",
                    "attributes": {"external_id": "ct-shoes", "name": "Shoes"}}  # fmt: skip
        ids["catalog-category"] = send(
            http, "create_catalog_category", "/api/catalog-categories", {"data": category}
        )["data"]["id"]
        body = item_body("CT-1")
        body["relationships"] = {
            "categories": {"data": [{"type": "catalog-category", "id": CATEGORY}]}
        }
        ids["catalog-item"] = send(http, "create_catalog_item", "/api/catalog-items",
                                   {"data": body})["data"]["id"]  # fmt: skip
        ids["catalog-variant"] = send(
            http, "create_catalog_variant", "/api/catalog-variants",
            {"data": variant_body("CT-1-S", ITEM)},
        )["data"]["id"]  # fmt: skip
        coupon = {"type": "coupon", "attributes": {"external_id": "SPRING", "description": "x"}}
        ids["coupon"] = send(http, "create_coupon", "/api/coupons", {"data": coupon})["data"]["id"]
        ids["coupon-code"] = send(
            http, "create_coupon_code", "/api/coupon-codes", {"data": code_body("AAA", "SPRING")}
        )["data"]["id"]
        for op_id, path, job_type, plural, rows in (
            ("bulk_create_catalog_items", "/api/catalog-item-bulk-create-jobs",
             "catalog-item-bulk-create-job", "items",
             [item_body("CT-2"), item_body("CT-1"), item_body("CT-7")]),
            ("bulk_update_catalog_items", "/api/catalog-item-bulk-update-jobs",
             "catalog-item-bulk-update-job", "items",
             [{"type": "catalog-item", "id": ITEM, "attributes": {"price": 12.5}},
              {"type": "catalog-item", "id": "$custom:::$default:::nope", "attributes": {}}]),
            ("bulk_create_catalog_variants", "/api/catalog-variant-bulk-create-jobs",
             "catalog-variant-bulk-create-job", "variants",
             [variant_body("CT-1-M", ITEM), variant_body("CT-9", "$custom:::$default:::nope"),
              variant_body("CT-1-L", ITEM)]),
            ("bulk_update_catalog_variants", "/api/catalog-variant-bulk-update-jobs",
             "catalog-variant-bulk-update-job", "variants",
             [{"type": "catalog-variant", "id": VARIANT, "attributes": {"inventory_quantity": 9}}]),
            ("bulk_create_catalog_categories", "/api/catalog-category-bulk-create-jobs",
             "catalog-category-bulk-create-job", "categories",
             [{"type": "catalog-category", "attributes": {"external_id": "ct-x", "name": "X"}},
              {"type": "catalog-category", "attributes": {"external_id": "ct-y", "name": "Y"}}]),
            ("bulk_update_catalog_categories", "/api/catalog-category-bulk-update-jobs",
             "catalog-category-bulk-update-job", "categories",
             [{"type": "catalog-category", "id": CATEGORY, "attributes": {"name": "Footwear"}}]),
            ("bulk_delete_catalog_variants", "/api/catalog-variant-bulk-delete-jobs",
             "catalog-variant-bulk-delete-job", "variants",
             [{"type": "catalog-variant", "id": "$custom:::$default:::CT-1-M"}]),
            ("bulk_delete_catalog_categories", "/api/catalog-category-bulk-delete-jobs",
             "catalog-category-bulk-delete-job", "categories",
             [{"type": "catalog-category", "id": "$custom:::$default:::ct-x"}]),
            ("bulk_delete_catalog_items", "/api/catalog-item-bulk-delete-jobs",
             "catalog-item-bulk-delete-job", "items",
             [{"type": "catalog-item", "id": "$custom:::$default:::CT-2"}]),
            ("bulk_create_coupon_codes", "/api/coupon-code-bulk-create-jobs",
             "coupon-code-bulk-create-job", "coupon-codes",
             [code_body("BBB", "SPRING"), code_body("AAA", "SPRING")]),
        ):  # fmt: skip
            job = send(http, op_id, path, bulk(job_type, plural, rows))["data"]
            assert job["attributes"]["status"] == "queued"
            ids[job_type] = job["id"]
        yield http, ids


def _ops() -> list[Operation]:
    ops = [op for tag in ("Catalogs", "Coupons") for op in catalog.by_tag(tag)]
    return [op for op in ops if op.operation_id not in NOT_EMULATED]


def test_every_catalog_and_coupon_operation_is_emulated() -> None:
    from kbridge.emulator.backend.catalogs import CatalogsBackend
    from kbridge.emulator.backend.coupons import CouponsBackend

    served = CatalogsBackend.operations | CouponsBackend.operations
    assert {op.operation_id for op in _ops()} <= served


def _path(op: Operation, ids: dict[str, str]) -> str:
    head = op.path.split("/")[2]
    kind = head[:-1] if head.endswith("s") and "jobs" not in head else head
    kind = {"catalog-categorie": "catalog-category"}.get(kind, kind)
    if "{job_id}" in op.path:
        return op.path.replace("{job_id}", ids[head[:-1]])
    return op.path.replace("{id}", ids[kind]) if "{id}" in op.path else op.path


@pytest.mark.parametrize(
    "op", [op for op in _ops() if op.method == "GET"], ids=lambda op: op.operation_id
)
def test_every_get_matches_the_spec(
    session: tuple[httpx.Client, dict[str, str]], op: Operation
) -> None:
    http, ids = session
    path = _path(op, ids)
    params: dict[str, str] = {}
    if op.operation_id == "get_coupon_codes":
        params["filter"] = "equals(coupon.id,['SPRING'])"
    for extra in [{}] + [{"include": inc} for inc in op.include]:
        response = http.get(path, params={**params, **extra})
        assert response.status_code == 200, f"{op.operation_id}: {response.text[:300]}"
        body = check(op, response)
        assert body["data"], f"{op.operation_id} {extra}: empty data"
        if extra:
            assert body.get("included"), f"{op.operation_id} {extra}: nothing included"


def test_bulk_jobs_report_per_row_errors(session: tuple[httpx.Client, dict[str, str]]) -> None:
    http, ids = session
    job = send(
        http, "get_bulk_create_catalog_items_job",
        f"/api/catalog-item-bulk-create-jobs/{ids['catalog-item-bulk-create-job']}",
    )["data"]  # fmt: skip
    attrs = job["attributes"]
    assert (attrs["status"], attrs["total_count"], attrs["completed_count"]) == ("complete", 3, 2)
    assert attrs["failed_count"] == 1
    assert (
        attrs["errors"][0]["source"]["pointer"]
        == "/data/attributes/items/data/1/attributes/external_id"
    )
    assert job["relationships"]["items"]["data"] == [
        {"type": "catalog-item", "id": "$custom:::$default:::CT-2"},
        {"type": "catalog-item", "id": "$custom:::$default:::CT-7"},
    ]
    codes = send(
        http, "get_bulk_create_coupon_codes_job",
        f"/api/coupon-code-bulk-create-jobs/{ids['coupon-code-bulk-create-job']}",
    )["data"]["attributes"]  # fmt: skip
    assert (codes["completed_count"], codes["failed_count"]) == (1, 1)
    assert "already exists" in codes["errors"][0]["detail"]
    item = send(http, "get_catalog_item", f"/api/catalog-items/{ITEM}")["data"]
    assert item["attributes"]["price"] == 12.5
    category = send(http, "get_catalog_category", f"/api/catalog-categories/{CATEGORY}")
    assert category["data"]["attributes"]["name"] == "Footwear"
    gone = http.get("/api/catalog-items/$custom:::$default:::CT-2")
    assert gone.status_code == 404
    check(catalog.get("get_catalog_item"), gone)


def test_filters_sorts_and_relationships(session: tuple[httpx.Client, dict[str, str]]) -> None:
    http, _ = session
    in_category = http.get(
        "/api/catalog-items", params={"filter": f"equals(category.id,'{CATEGORY}')"}
    ).json()["data"]
    assert [i["id"] for i in in_category] == [ITEM]
    titled = http.get("/api/catalog-items", params={"filter": "contains(title,'Trail')"})
    assert [i["attributes"]["title"] for i in titled.json()["data"]] == ["Trail Running Shoe"]
    newest = http.get("/api/catalog-items", params={"sort": "-created", "page[size]": "1"}).json()
    assert newest["data"][0]["id"].endswith("CT-7")
    assert newest["links"]["next"]
    too_big = expect_400(http, "get_catalog_items", "/api/catalog-items",
                         params={"page[size]": "101"})  # fmt: skip
    assert "101" in too_big or "size" in too_big
    by_sku = http.get("/api/catalog-variants", params={"filter": "equals(sku,'CT-1-S')"}).json()
    assert [v["id"] for v in by_sku["data"]] == [VARIANT]
    link = {"data": [{"type": "catalog-category", "id": "$custom:::$default:::apparel"}]}
    response = http.post(f"/api/catalog-items/{ITEM}/relationships/categories", json=link)
    assert response.status_code == 204
    apparel = http.get("/api/catalog-categories/$custom:::$default:::apparel/relationships/items")
    assert {"type": "catalog-item", "id": ITEM} in apparel.json()["data"]


def test_catalog_errors_are_spec_shaped(session: tuple[httpx.Client, dict[str, str]]) -> None:
    http, _ = session
    missing = item_body("CT-3")
    del missing["attributes"]["title"]
    detail = expect_400(http, "create_catalog_item", "/api/catalog-items", {"data": missing})
    assert "title" in detail
    bad = item_body("CT-4", integration_type="$shopify")
    expect_400(http, "create_catalog_item", "/api/catalog-items", {"data": bad})
    dup = http.post("/api/catalog-items", json={"data": item_body("CT-1")})
    assert dup.status_code == 409
    check(catalog.get("create_catalog_item"), dup)
    orphan = variant_body("CT-5", "$custom:::$default:::nope")
    expect_400(http, "create_catalog_variant", "/api/catalog-variants", {"data": orphan})


def test_coupon_codes_are_unique_expire_and_need_a_filter(
    session: tuple[httpx.Client, dict[str, str]],
) -> None:
    http, _ = session
    detail = expect_400(http, "get_coupon_codes", "/api/coupon-codes")
    assert "coupon.id" in detail
    dup = http.post("/api/coupon-codes", json={"data": code_body("AAA", "SPRING")})
    assert dup.status_code == 409
    check(catalog.get("create_coupon_code"), dup)
    code = send(http, "get_coupon_code", "/api/coupon-codes/SPRING-AAA")["data"]["attributes"]
    assert code["status"] == "UNASSIGNED"
    assert code["expires_at"] > "2026"  # a year after creation, by default
    past = code_body("OLD", "SPRING")
    past["attributes"]["expires_at"] = "2000-01-01T00:00:00Z"
    expect_400(http, "create_coupon_code", "/api/coupon-codes", {"data": past})
    used = {"data": {"type": "coupon-code", "id": "SPRING-AAA", "attributes": {"status": "USED"}}}
    send(http, "update_coupon_code", "/api/coupon-codes/SPRING-AAA", used)
    in_use = http.delete("/api/coupon-codes/SPRING-AAA")
    assert in_use.status_code == 400
    unused = http.get(
        "/api/coupon-codes",
        params={"filter": "equals(coupon.id,['SPRING']),equals(status,'UNASSIGNED')"},
    ).json()["data"]
    assert [c["id"] for c in unused] == ["SPRING-BBB"]
    soon = http.get(
        "/api/coupons/SPRING/coupon-codes",
        params={"filter": "less-than(expires_at,2100-01-01T00:00:00Z)"},
    ).json()["data"]
    assert {c["id"] for c in soon} == {"SPRING-AAA", "SPRING-BBB"}
    later = {"data": {"type": "coupon-code", "id": "SPRING-BBB",
                      "attributes": {"expires_at": "2101-01-01T00:00:00Z"}}}  # fmt: skip
    send(http, "update_coupon_code", "/api/coupon-codes/SPRING-BBB", later)
    soon = http.get(
        "/api/coupons/SPRING/coupon-codes",
        params={"filter": "less-than(expires_at,2100-01-01T00:00:00Z)"},
    ).json()["data"]
    assert [c["id"] for c in soon] == ["SPRING-AAA"]
    seeded = http.get("/api/coupons/WELCOME10/coupon-codes").json()["data"]
    assert seeded
    assert all(c["id"].startswith("WELCOME10-") for c in seeded)


def test_scopes_guard_the_catalog() -> None:
    config = EmulatorConfig(seed=12, profiles=10, events=50, rate_limit_factor=None)
    with EmulatorServer(config) as server:
        minted = httpx.post(f"{server.base_url}/_emulator/keys", json={"scopes": ["coupons:read"]})
        key = minted.json()["key"]
        with http_client_for(server, key=key) as http:
            assert http.get("/api/coupons").status_code == 200
            denied = http.get("/api/catalog-items")
            assert denied.status_code == 403
            check(catalog.get("get_catalog_items"), denied)


def test_back_in_stock_subscription(session: tuple[httpx.Client, dict[str, str]]) -> None:
    http, _ = session
    body = {
        "type": "back-in-stock-subscription",
        "attributes": {
            "channels": ["EMAIL"],
            "profile": {"data": {"type": "profile", "attributes": {"email": "bis@example.com"}}},
        },
        "relationships": {"variant": {"data": {"type": "catalog-variant", "id": VARIANT}}},
    }
    op = "create_back_in_stock_subscription"
    assert send(http, op, "/api/back-in-stock-subscriptions", {"data": body}) is None
    found = http.get("/api/profiles", params={"filter": "equals(email,'bis@example.com')"})
    assert len(found.json()["data"]) == 1
    body["attributes"]["channels"] = ["FAX"]
    expect_400(http, op, "/api/back-in-stock-subscriptions", {"data": body})
