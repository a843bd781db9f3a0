"""``client.catalogs``: catalogue items, variants and categories (Klaviyo tag *Catalogs*).

Ids are ``$custom:::$default:::<external_id>`` (Klaviyo's only integration and
catalogue types for the API); :func:`catalog_item_id` builds one. Bulk
methods split their rows at Klaviyo's 100 per job, validate every row before
the first job is sent, and return the job resources (whose ``errors`` list
the rows Klaviyo refused).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Unpack

from kbridge.api.jsonapi import Resource, build_document, identifiers
from kbridge.api.resources._base import ListQuery, Progress, Service, chunked, list_params
from kbridge.api.validation import ValidationError

__all__ = [
    "CATALOG_ITEM_FIELDS",
    "MAX_CATALOG_BULK",
    "CatalogsService",
    "catalog_item_attributes",
    "catalog_item_id",
]

MAX_CATALOG_BULK = 100
_PREFIX = "$custom:::$default:::"

#: the attributes a catalogue item takes, and whether a create needs them
CATALOG_ITEM_FIELDS: dict[str, bool] = {
    "external_id": True,
    "title": True,
    "description": True,
    "url": True,
    "price": False,
    "image_full_url": False,
    "image_thumbnail_url": False,
    "images": False,
    "custom_metadata": False,
    "published": False,
}


def catalog_item_id(external_id: str) -> str:
    """The Klaviyo id of the catalogue record with this external id."""
    return external_id if external_id.startswith(_PREFIX) else _PREFIX + external_id


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field, "must be a non-empty string")
    return value


def catalog_item_attributes(
    *,
    external_id: str | None = None,
    title: str | None = None,
    description: str | None = None,
    url: str | None = None,
    price: float | None = None,
    image_full_url: str | None = None,
    image_thumbnail_url: str | None = None,
    images: Sequence[str] | None = None,
    custom_metadata: Mapping[str, Any] | None = None,
    published: bool | None = None,
) -> dict[str, Any]:
    """The ``attributes`` of a catalogue item, checked; ``None`` leaves one out."""
    attrs: dict[str, Any] = {}
    for name, value in (
        ("external_id", external_id),
        ("title", title),
        ("description", description),
        ("url", url),
        ("image_full_url", image_full_url),
        ("image_thumbnail_url", image_thumbnail_url),
    ):
        if value is not None:
            attrs[name] = _text(value, name)
    if price is not None:
        if isinstance(price, bool) or not isinstance(price, int | float) or price < 0:
            raise ValidationError("price", "must be a number ≥ 0")
        attrs["price"] = float(price)
    if images is not None:
        attrs["images"] = [_text(i, "images") for i in images]
    if custom_metadata is not None:
        attrs["custom_metadata"] = dict(custom_metadata)
    if published is not None:
        attrs["published"] = bool(published)
    return attrs


def _new_item(row: Mapping[str, Any], where: str) -> dict[str, Any]:
    unknown = sorted(set(row) - set(CATALOG_ITEM_FIELDS) - {"category_ids"})
    if unknown:
        raise ValidationError(where, f"unknown field(s): {', '.join(unknown)}")
    missing = [k for k, needed in CATALOG_ITEM_FIELDS.items() if needed and not row.get(k)]
    if missing:
        raise ValidationError(where, f"missing {', '.join(missing)}")
    fields = {k: v for k, v in row.items() if k != "category_ids"}
    try:
        attrs = catalog_item_attributes(**fields)
    except ValidationError as exc:
        raise ValidationError(f"{where}.{exc.field}", exc.reason) from None
    return attrs


class CatalogsService(Service):
    # -- items -----------------------------------------------------------------------
    async def get_catalog_items(self, **query: Unpack[ListQuery]) -> list[Resource]:
        """The first page of catalogue items (at most 100)."""
        return await self._page("get_catalog_items", query)

    def iter_catalog_items(self, **query: Unpack[ListQuery]) -> AsyncIterator[Resource]:
        """Every catalogue item (filter by category.id, title, published; sort created)."""
        return self._all("get_catalog_items", query)

    async def get_catalog_item(self, item_id: str, **query: Unpack[ListQuery]) -> Resource:
        params = list_params("get_catalog_item", **query)
        path = {"id": catalog_item_id(item_id)}
        return await self._one("get_catalog_item", path_params=path, params=params)

    async def create_catalog_item(
        self,
        *,
        external_id: str,
        title: str,
        description: str,
        url: str,
        price: float | None = None,
        image_full_url: str | None = None,
        images: Sequence[str] | None = None,
        published: bool | None = None,
        category_ids: Sequence[str] = (),
    ) -> Resource:
        """A new catalogue item.

        Args:
            external_id: your id for the product (the item's id is built from it)
            title: the product's name
            description: the product's description
            url: the product page
            price: the product's price
            image_full_url: the product's image
            images: more image URLs (repeatable)
            published: whether the item shows in Klaviyo (default: yes)
            category_ids: a category id or external id (repeatable)
        """
        attrs = catalog_item_attributes(
            external_id=external_id, title=title, description=description, url=url,
            price=price, image_full_url=image_full_url, images=images, published=published,
        )  # fmt: skip
        rels = {"categories": [("catalog-category", catalog_item_id(c)) for c in category_ids]}
        body = build_document(
            "catalog-item", attributes=attrs, relationships=rels if category_ids else None
        )
        return await self._one("create_catalog_item", json=body)

    async def update_catalog_item(
        self,
        item_id: str,
        *,
        title: str | None = None,
        description: str | None = None,
        url: str | None = None,
        price: float | None = None,
        image_full_url: str | None = None,
        published: bool | None = None,
        category_ids: Sequence[str] | None = None,
    ) -> Resource:
        """Change the given attributes of a catalogue item.

        Args:
            category_ids: the item's categories from now on (repeatable; replaces them)
        """
        iid = catalog_item_id(item_id)
        attrs = catalog_item_attributes(
            title=title, description=description, url=url, price=price,
            image_full_url=image_full_url, published=published,
        )  # fmt: skip
        rels = None
        if category_ids is not None:
            rels = {"categories": [("catalog-category", catalog_item_id(c)) for c in category_ids]}
        body = build_document("catalog-item", id=iid, attributes=attrs, relationships=rels)
        return await self._one("update_catalog_item", path_params={"id": iid}, json=body)

    async def delete_catalog_item(self, item_id: str) -> None:
        """Delete a catalogue item (and its variants)."""
        await self._send("delete_catalog_item", path_params={"id": catalog_item_id(item_id)})

    def iter_variants_for_catalog_item(
        self, item_id: str, **query: Unpack[ListQuery]
    ) -> AsyncIterator[Resource]:
        path = {"id": catalog_item_id(item_id)}
        return self._all("get_variants_for_catalog_item", query, path_params=path)

    def iter_categories_for_catalog_item(
        self, item_id: str, **query: Unpack[ListQuery]
    ) -> AsyncIterator[Resource]:
        path = {"id": catalog_item_id(item_id)}
        return self._all("get_categories_for_catalog_item", query, path_params=path)

    async def add_categories_to_catalog_item(
        self, item_id: str, *, category_ids: Sequence[str]
    ) -> None:
        """Put an item in more categories.

        Args:
            category_ids: a category id or external id (repeatable)
        """
        body = identifiers("catalog-category", [catalog_item_id(c) for c in category_ids])
        path = {"id": catalog_item_id(item_id)}
        await self._send("add_categories_to_catalog_item", path_params=path, json=body)

    # -- variants --------------------------------------------------------------------
    def iter_catalog_variants(self, **query: Unpack[ListQuery]) -> AsyncIterator[Resource]:
        """Every catalogue variant (filter by item.id, sku, title, published)."""
        return self._all("get_catalog_variants", query)

    async def get_catalog_variant(self, variant_id: str) -> Resource:
        path = {"id": catalog_item_id(variant_id)}
        return await self._one("get_catalog_variant", path_params=path)

    async def create_catalog_variant(
        self,
        *,
        item_id: str,
        external_id: str,
        title: str,
        description: str,
        sku: str,
        price: float,
        inventory_quantity: float,
        url: str,
        inventory_policy: int | None = None,
        published: bool | None = None,
    ) -> Resource:
        """A new variant of a catalogue item.

        Args:
            item_id: the item's id or external id
            inventory_policy: 0 (stock is tracked), 1 or 2 (see Klaviyo's docs)
        """
        attrs = catalog_item_attributes(
            external_id=external_id, title=title, description=description, url=url,
            price=price, published=published,
        )  # fmt: skip
        attrs["sku"] = _text(sku, "sku")
        attrs["inventory_quantity"] = float(inventory_quantity)
        if inventory_policy is not None:
            if inventory_policy not in (0, 1, 2):
                raise ValidationError("inventory_policy", "must be 0, 1 or 2")
            attrs["inventory_policy"] = inventory_policy
        rels = {"item": ("catalog-item", catalog_item_id(item_id))}
        body = build_document("catalog-variant", attributes=attrs, relationships=rels)
        return await self._one("create_catalog_variant", json=body)

    async def update_catalog_variant(
        self,
        variant_id: str,
        *,
        price: float | None = None,
        inventory_quantity: float | None = None,
        title: str | None = None,
        published: bool | None = None,
    ) -> Resource:
        vid = catalog_item_id(variant_id)
        attrs = catalog_item_attributes(price=price, title=title, published=published)
        if inventory_quantity is not None:
            attrs["inventory_quantity"] = float(inventory_quantity)
        body = build_document("catalog-variant", id=vid, attributes=attrs)
        return await self._one("update_catalog_variant", path_params={"id": vid}, json=body)

    async def delete_catalog_variant(self, variant_id: str) -> None:
        path = {"id": catalog_item_id(variant_id)}
        await self._send("delete_catalog_variant", path_params=path)

    # -- categories ------------------------------------------------------------------
    def iter_catalog_categories(self, **query: Unpack[ListQuery]) -> AsyncIterator[Resource]:
        """Every catalogue category (filter by item.id, name)."""
        return self._all("get_catalog_categories", query)

    async def get_catalog_category(self, category_id: str) -> Resource:
        path = {"id": catalog_item_id(category_id)}
        return await self._one("get_catalog_category", path_params=path)

    async def create_catalog_category(
        self, *, external_id: str, name: str, item_ids: Sequence[str] = ()
    ) -> Resource:
        """A new catalogue category.

        Args:
            item_ids: an item id or external id to put in it (repeatable)
        """
        attrs = {"external_id": _text(external_id, "external_id"), "name": _text(name, "name")}
        rels = {"items": [("catalog-item", catalog_item_id(i)) for i in item_ids]}
        body = build_document(
            "catalog-category", attributes=attrs, relationships=rels if item_ids else None
        )
        return await self._one("create_catalog_category", json=body)

    async def update_catalog_category(self, category_id: str, *, name: str) -> Resource:
        cid = catalog_item_id(category_id)
        body = build_document("catalog-category", id=cid, attributes={"name": _text(name, "name")})
        return await self._one("update_catalog_category", path_params={"id": cid}, json=body)

    async def delete_catalog_category(self, category_id: str) -> None:
        path = {"id": catalog_item_id(category_id)}
        await self._send("delete_catalog_category", path_params=path)

    def iter_items_for_catalog_category(
        self, category_id: str, **query: Unpack[ListQuery]
    ) -> AsyncIterator[Resource]:
        path = {"id": catalog_item_id(category_id)}
        return self._all("get_items_for_catalog_category", query, path_params=path)

    # -- bulk ------------------------------------------------------------------------
    async def bulk_create_catalog_items(
        self, items: Sequence[Mapping[str, Any]], *, progress: Progress | None = None
    ) -> list[Resource]:
        """Create catalogue items in jobs of ≤100; returns the job resources.

        Each item is a mapping of :func:`catalog_item_attributes` keywords (plus
        ``category_ids``), all validated before the first job is sent.

        Args:
            items: the items to create
        """
        if not items:
            raise ValidationError("items", "give at least one item")
        rows = []
        for i, item in enumerate(items):
            row: dict[str, Any] = {
                "type": "catalog-item",
                "attributes": _new_item(item, f"items[{i}]"),
            }
            cats = item.get("category_ids") or ()
            if cats:
                row["relationships"] = {
                    "categories": {
                        "data": [
                            {"type": "catalog-category", "id": catalog_item_id(c)} for c in cats
                        ]
                    }
                }
            rows.append(row)
        return await self._bulk("bulk_create_catalog_items", "catalog-item-bulk-create-job",
                                "items", rows, progress)  # fmt: skip

    async def bulk_update_catalog_items(
        self, items: Sequence[Mapping[str, Any]], *, progress: Progress | None = None
    ) -> list[Resource]:
        """Update catalogue items in jobs of ≤100; each mapping needs ``id`` (or
        ``external_id``) and the attributes to change. Returns the job resources."""
        if not items:
            raise ValidationError("items", "give at least one item")
        rows = []
        for i, item in enumerate(items):
            ident = item.get("id") or item.get("external_id")
            if not ident:
                raise ValidationError(f"items[{i}]", "needs an id or external_id")
            fields = {k: v for k, v in item.items() if k not in ("id", "external_id")}
            try:
                attrs = catalog_item_attributes(**fields)
            except TypeError as exc:
                raise ValidationError(f"items[{i}]", str(exc)) from None
            rows.append(
                {"type": "catalog-item", "id": catalog_item_id(str(ident)), "attributes": attrs}
            )
        return await self._bulk("bulk_update_catalog_items", "catalog-item-bulk-update-job",
                                "items", rows, progress)  # fmt: skip

    async def bulk_delete_catalog_items(
        self, item_ids: Sequence[str], *, progress: Progress | None = None
    ) -> list[Resource]:
        """Delete catalogue items (ids or external ids) in jobs of ≤100."""
        if not item_ids:
            raise ValidationError("item_ids", "give at least one item id")
        rows = [{"type": "catalog-item", "id": catalog_item_id(i)} for i in item_ids]
        return await self._bulk("bulk_delete_catalog_items", "catalog-item-bulk-delete-job",
                                "items", rows, progress)  # fmt: skip

    async def get_bulk_create_catalog_items_job(self, job_id: str) -> Resource:
        """A bulk create job: status, counts, per-row ``errors``."""
        path = {"job_id": job_id}
        return await self._one("get_bulk_create_catalog_items_job", path_params=path)

    async def get_bulk_update_catalog_items_job(self, job_id: str) -> Resource:
        path = {"job_id": job_id}
        return await self._one("get_bulk_update_catalog_items_job", path_params=path)

    async def get_bulk_delete_catalog_items_job(self, job_id: str) -> Resource:
        path = {"job_id": job_id}
        return await self._one("get_bulk_delete_catalog_items_job", path_params=path)

    async def _bulk(
        self,
        operation_id: str,
        job_type: str,
        plural: str,
        rows: list[dict[str, Any]],
        progress: Progress | None,
    ) -> list[Resource]:
        chunks = chunked(rows, MAX_CATALOG_BULK)

        async def send(chunk: Sequence[Any]) -> Resource:
            body = build_document(job_type, attributes={plural: {"data": list(chunk)}})
            return await self._one(operation_id, json=body)

        results: list[Resource] = await self._run_chunks(chunks, send, progress)
        return results
