"""Catalogue and coupon actions of the client, against the emulator over loopback."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from kbridge.api import Client, ConflictError, NotFoundError
from kbridge.api.filter_builder import F
from kbridge.api.validation import ValidationError
from kbridge.emulator import EmulatorServer

pytestmark = pytest.mark.integration


def _advance(server: EmulatorServer, seconds: float = 1) -> None:
    """Let queued jobs complete: they run when the simulated clock reaches them."""
    httpx.post(f"{server.base_url}/_emulator/clock", json={"advance_seconds": seconds})


def test_catalog_item_crud(client: Client) -> None:
    item = client.catalogs.create_catalog_item(
        external_id="SVC-1", title="Mug", description="A mug", url="https://shop.example/mug",
        price=12.0, category_ids=["home"],
    )  # fmt: skip
    assert item.id == "$custom:::$default:::SVC-1"
    assert item["price"] == 12.0
    updated = client.catalogs.update_catalog_item("SVC-1", price=14.5, published=False)
    assert (updated["price"], updated["published"]) == (14.5, False)
    homeware = [i.id for i in client.catalogs.iter_items_for_catalog_category("home")]
    assert item.id in homeware
    variant = client.catalogs.create_catalog_variant(
        item_id="SVC-1", external_id="SVC-1-L", title="Large mug", description="Large",
        sku="SVC-1-L", price=16.0, inventory_quantity=4, url="https://shop.example/mug?l",
    )  # fmt: skip
    assert [v.id for v in client.catalogs.iter_variants_for_catalog_item("SVC-1")] == [variant.id]
    with pytest.raises(ConflictError):
        client.catalogs.create_catalog_item(
            external_id="SVC-1", title="x", description="x", url="https://x.example"
        )
    client.catalogs.delete_catalog_item("SVC-1")
    with pytest.raises(NotFoundError):
        client.catalogs.get_catalog_item("SVC-1")
    with pytest.raises(NotFoundError):
        client.catalogs.get_catalog_variant(variant.id)


def test_catalog_filters_reach_the_api(client: Client) -> None:
    shoes = list(client.catalogs.iter_catalog_items(filter=F.contains("title", "Shoe")))
    assert [i["title"] for i in shoes] == ["Trail Running Shoe"]
    with pytest.raises(ValidationError):
        list(client.catalogs.iter_catalog_items(sort="price"))


def test_bulk_item_import_reports_rows_it_refused(client: Client, server: EmulatorServer) -> None:
    rows = [
        {"external_id": f"BULK-{n}", "title": f"Thing {n}", "description": "d",
         "url": f"https://shop.example/{n}", "price": float(n)}
        for n in range(150)
    ]  # fmt: skip
    rows.append({**rows[0]})  # a duplicate: Klaviyo refuses that row, not the job
    jobs = client.catalogs.bulk_create_catalog_items(rows)
    assert [j["total_count"] for j in jobs] == [100, 51]
    _advance(server)
    done = [client.catalogs.get_bulk_create_catalog_items_job(j.id or "") for j in jobs]
    assert [(j["status"], j["completed_count"], j["failed_count"]) for j in done] == [
        ("complete", 100, 0),
        ("complete", 50, 1),
    ]
    assert "already exists" in done[1]["errors"][0]["detail"]
    with pytest.raises(ValidationError) as err:
        client.catalogs.bulk_create_catalog_items([{"external_id": "X", "title": "no url"}])
    assert "missing" in str(err.value)
    deleted = client.catalogs.bulk_delete_catalog_items([r["external_id"] for r in rows[:150]])
    _advance(server)
    job = client.catalogs.get_bulk_delete_catalog_items_job(deleted[0].id or "")
    assert job["completed_count"] == 100


def test_coupons_and_bulk_codes(client: Client, server: EmulatorServer) -> None:
    coupon = client.coupons.create_coupon(external_id="SUMMER", description="15% off")
    assert coupon.id == "SUMMER"
    codes = [f"SUM{n:04d}" for n in range(1200)]
    expiry = datetime(2030, 1, 1, tzinfo=UTC)
    jobs = client.coupons.bulk_create_coupon_codes("SUMMER", codes=codes, expires_at=expiry)
    assert [j["total_count"] for j in jobs] == [1000, 200]
    _advance(server)
    listed = list(client.coupons.iter_coupon_codes_for_coupon("SUMMER"))
    assert sorted(c["unique_code"] for c in listed) == codes
    assert {c["expires_at"][:10] for c in listed} == {"2030-01-01"}
    again = client.coupons.bulk_create_coupon_codes("SUMMER", codes=codes[:3])
    _advance(server)
    job = client.coupons.get_bulk_create_coupon_codes_job(again[0].id or "")
    assert (job["completed_count"], job["failed_count"]) == (0, 3)
    used = client.coupons.update_coupon_code("SUMMER-SUM0000", status="USED")
    assert used["status"] == "USED"
    unassigned = client.coupons.iter_coupon_codes(
        filter='equals(coupon.id,["SUMMER"]),equals(status,"UNASSIGNED")'
    )
    assert len(list(unassigned)) == 1199
    with pytest.raises(ValidationError):
        client.coupons.iter_coupon_codes()
    with pytest.raises(ValidationError):
        client.coupons.bulk_create_coupon_codes("SUMMER", codes=["A", "A"])
    client.coupons.delete_coupon("SUMMER")
    with pytest.raises(NotFoundError):
        client.coupons.get_coupon_code("SUMMER-SUM0001")
