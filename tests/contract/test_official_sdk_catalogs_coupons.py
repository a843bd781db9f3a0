"""Catalogs and coupons through Klaviyo's official SDK (``klaviyo-api`` 25.0.0).

The SDK parses each answer into its pydantic models: every GET of both tags
(by its operation id, with real ids) and the writes that make those ids must
come back as its models, and a refused row of a bulk job as the job's
``errors`` it models.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from klaviyo_api import KlaviyoAPI
from openapi_client.exceptions import ApiException

from kbridge import catalog
from kbridge.emulator import EmulatorConfig, EmulatorServer

pytestmark = pytest.mark.contract

ITEM = "$custom:::$default:::SDK-1"
NOWHERE = "$custom:::$default:::x"


@pytest.fixture(scope="module")
def session() -> Iterator[tuple[KlaviyoAPI, dict[str, str]]]:
    config = EmulatorConfig(seed=21, profiles=20, events=100, rate_limit_factor=None)
    with EmulatorServer(config) as server:
        klaviyo = KlaviyoAPI(server.api_key, max_delay=1, max_retries=0, test_host=server.base_url)
        ids = _make_everything(klaviyo)
        httpx.post(f"{server.base_url}/_emulator/clock", json={"advance_seconds": 1})
        yield klaviyo, ids


def _item(external_id: str) -> dict[str, Any]:
    return {
        "type": "catalog-item",
        "attributes": {
            "external_id": external_id, "title": "SDK item", "description": "d",
            "url": "https://shop.example/sdk", "price": 5.0,
        },
    }  # fmt: skip


def _make_everything(k: KlaviyoAPI) -> dict[str, str]:
    ids: dict[str, str] = {}
    cat = {"type": "catalog-category", "attributes": {"external_id": "sdk", "name": "SDK"}}
    ids["category"] = k.Catalogs.create_catalog_category({"data": cat}).data.id
    body = _item("SDK-1")
    body["relationships"] = {"categories": {"data": [{"type": "catalog-category",
                                                      "id": ids["category"]}]}}  # fmt: skip
    ids["item"] = k.Catalogs.create_catalog_item({"data": body}).data.id
    variant = {
        "type": "catalog-variant",
        "attributes": {
            "external_id": "SDK-1-V", "title": "v", "description": "d", "sku": "SDK-1-V",
            "inventory_quantity": 2, "price": 5.0, "url": "https://shop.example/sdk?v",
        },
        "relationships": {"item": {"data": {"type": "catalog-item", "id": ids["item"]}}},
    }  # fmt: skip
    ids["variant"] = k.Catalogs.create_catalog_variant({"data": variant}).data.id
    coupon = {"type": "coupon", "attributes": {"external_id": "SDK5"}}
    ids["coupon"] = k.Coupons.create_coupon({"data": coupon}).data.id
    code = {
        "type": "coupon-code",
        "attributes": {"unique_code": "SDKCODE"},
        "relationships": {"coupon": {"data": {"type": "coupon", "id": "SDK5"}}},
    }
    ids["code"] = k.Coupons.create_coupon_code({"data": code}).data.id
    jobs = {
        "catalog-item-bulk-create-job": ("bulk_create_catalog_items", "items",
                                         [_item("SDK-2"), _item("SDK-1")]),
        "catalog-item-bulk-update-job": ("bulk_update_catalog_items", "items",
                                         [{"type": "catalog-item", "id": ITEM,
                                           "attributes": {"price": 6.0}}]),
        "catalog-item-bulk-delete-job": ("bulk_delete_catalog_items", "items",
                                         [{"type": "catalog-item", "id": NOWHERE}]),
        "catalog-variant-bulk-create-job": ("bulk_create_catalog_variants", "variants",
                                            [{**variant, "attributes": {
                                                **variant["attributes"], "external_id": "SDK-1-W",
                                                "sku": "SDK-1-W"}}]),
        "catalog-variant-bulk-update-job": ("bulk_update_catalog_variants", "variants",
                                            [{"type": "catalog-variant", "id": ids["variant"],
                                              "attributes": {"inventory_quantity": 1}}]),
        "catalog-variant-bulk-delete-job": ("bulk_delete_catalog_variants", "variants",
                                            [{"type": "catalog-variant",
                                              "id": "$custom:::$default:::x"}]),
        "catalog-category-bulk-create-job": ("bulk_create_catalog_categories", "categories",
                                             [{"type": "catalog-category", "attributes": {
                                                 "external_id": "sdk2", "name": "Two"}}]),
        "catalog-category-bulk-update-job": ("bulk_update_catalog_categories", "categories",
                                             [{"type": "catalog-category", "id": ids["category"],
                                               "attributes": {"name": "SDK!"}}]),
        "catalog-category-bulk-delete-job": ("bulk_delete_catalog_categories", "categories",
                                             [{"type": "catalog-category",
                                               "id": "$custom:::$default:::x"}]),
    }  # fmt: skip
    for job_type, (method, plural, rows) in jobs.items():
        body = {"data": {"type": job_type, "attributes": {plural: {"data": rows}}}}
        ids[job_type] = getattr(k.Catalogs, method)(body).data.id
    codes = {"data": {"type": "coupon-code-bulk-create-job",
                      "attributes": {"coupon-codes": {"data": [{**code, "attributes": {
                          "unique_code": "SDKCODE2"}}, code]}}}}  # fmt: skip
    ids["coupon-code-bulk-create-job"] = k.Coupons.bulk_create_coupon_codes(codes).data.id
    return ids


def _args(op_id: str, path: str, ids: dict[str, str]) -> tuple[list[str], dict[str, Any]]:
    if "{job_id}" in path:
        return [ids[path.split("/")[2][:-1]]], {}
    kwargs = {"filter": "equals(coupon.id,['SDK5'])"} if op_id == "get_coupon_codes" else {}
    if "{id}" not in path:
        return [], kwargs
    head = path.split("/")[2]
    kinds = {
        "catalog-items": "item", "catalog-variants": "variant", "catalog-categories": "category",
        "coupons": "coupon", "coupon-codes": "code",
    }  # fmt: skip
    kind = kinds[head]
    return [ids[kind]], kwargs


GETS = [op for tag in ("Catalogs", "Coupons") for op in catalog.by_tag(tag) if op.method == "GET"]


@pytest.mark.parametrize("op", GETS, ids=lambda op: op.operation_id)
def test_every_get_parses_into_the_sdk_models(
    session: tuple[KlaviyoAPI, dict[str, str]], op: catalog.Operation
) -> None:
    klaviyo, ids = session
    api = klaviyo.Catalogs if op.tag == "Catalogs" else klaviyo.Coupons
    args, kwargs = _args(op.operation_id, op.path, ids)
    answer = getattr(api, op.operation_id)(*args, **kwargs)
    assert answer.data


def test_a_bulk_job_reports_the_row_it_refused(session: tuple[KlaviyoAPI, dict[str, str]]) -> None:
    klaviyo, ids = session
    job = klaviyo.Catalogs.get_bulk_create_catalog_items_job(
        ids["catalog-item-bulk-create-job"], include=["items"]
    )
    attrs = job.data.attributes
    assert (attrs.status, attrs.completed_count, attrs.failed_count) == ("complete", 1, 1)
    assert attrs.errors[0].source.pointer.endswith("/1/attributes/external_id")
    assert [i.id for i in job.included] == ["$custom:::$default:::SDK-2"]


def test_a_duplicate_code_is_refused(session: tuple[KlaviyoAPI, dict[str, str]]) -> None:
    klaviyo, _ = session
    code = {
        "type": "coupon-code",
        "attributes": {"unique_code": "SDKCODE"},
        "relationships": {"coupon": {"data": {"type": "coupon", "id": "SDK5"}}},
    }
    with pytest.raises(ApiException) as caught:
        klaviyo.Coupons.create_coupon_code({"data": code})
    assert caught.value.status == 409
