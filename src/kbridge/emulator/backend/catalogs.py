"""Catalogs: items, variants and categories, their relationships and bulk jobs.

The three kinds share one shape (:class:`Kind`): which attributes a create
and an update accept, of which JSON type, and which are required. A bulk job
applies the very code of the single-record operation to each of its rows and
keeps a row's error (with its pointer into the job's body) instead of failing
the job, as Klaviyo reports ``errors`` per job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kbridge.emulator.backend.call import Outcome
from kbridge.emulator.backend.catalog_records import CatalogRecord, CatalogSeed, catalog_id
from kbridge.emulator.backend.common import (
    Context,
    TagBackend,
    attributes_of,
    data_of,
    identifier_list,
    not_found,
    page_of,
    page_outcome,
    relationship_ids,
    required_jobs,
)
from kbridge.emulator.backend.errors import (
    ConflictError,
    EmulatorBackendError,
    InvalidError,
)
from kbridge.emulator.backend.ids import iso
from kbridge.emulator.backend.models import JobRecord, JobStatus
from kbridge.emulator.backend.resource import Linkage, Resource
from kbridge.emulator.query import Page

if TYPE_CHECKING:
    from kbridge.emulator.backend.call import Call

__all__ = ["MAX_BULK", "CatalogsBackend", "job_resource"]

#: rows per bulk create/update/delete job (Klaviyo: "max 100 … per request")
MAX_BULK = 100
#: how long a finished job stays readable
_JOB_EXPIRY = 7 * 86400.0

_BIS_CHANNELS = ("EMAIL", "PUSH", "SMS", "WHATSAPP")
_STR, _NUM, _INT, _BOOL, _LIST, _OBJ = "string", "number", "integer", "boolean", "array", "object"


@dataclass(frozen=True)
class Kind:
    """One catalogue resource type: its attributes and how its records relate."""

    type: str
    #: name → JSON type, on create
    create: dict[str, str]
    required: tuple[str, ...]
    #: name → JSON type, on update
    update: dict[str, str]
    #: attributes a response carries (besides created/updated), in Klaviyo's order
    shown: tuple[str, ...]
    #: the relationship a create/update body may set: (name, related type)
    link: tuple[str, str] | None
    plural: str
    has_created: bool = True


_MEDIA = {
    "url": _STR,
    "image_full_url": _STR,
    "image_thumbnail_url": _STR,
    "images": _LIST,
    "custom_metadata": _OBJ,
    "published": _BOOL,
}
_ORIGIN = {"external_id": _STR, "integration_type": _STR, "catalog_type": _STR}

ITEM = Kind(
    type="catalog-item",
    create={**_ORIGIN, "title": _STR, "price": _NUM, "description": _STR, **_MEDIA},
    required=("external_id", "title", "description", "url"),
    update={"title": _STR, "price": _NUM, "description": _STR, **_MEDIA},
    shown=(
        "external_id",
        "title",
        "description",
        "price",
        "url",
        "image_full_url",
        "image_thumbnail_url",
        "images",
        "custom_metadata",
        "published",
    ),
    link=("categories", "catalog-category"),
    plural="items",
)
_VARIANT_FIELDS = {
    "title": _STR,
    "description": _STR,
    "sku": _STR,
    "inventory_policy": _INT,
    "inventory_quantity": _NUM,
    "price": _NUM,
    **_MEDIA,
}
VARIANT = Kind(
    type="catalog-variant",
    create={**_ORIGIN, **_VARIANT_FIELDS},
    required=(
        "external_id",
        "title",
        "description",
        "sku",
        "inventory_quantity",
        "price",
        "url",
    ),
    update=_VARIANT_FIELDS,
    shown=(
        "external_id",
        "title",
        "description",
        "sku",
        "inventory_policy",
        "inventory_quantity",
        "price",
        "url",
        "image_full_url",
        "image_thumbnail_url",
        "images",
        "custom_metadata",
        "published",
    ),
    link=("item", "catalog-item"),
    plural="variants",
)
CATEGORY = Kind(
    type="catalog-category",
    create={**_ORIGIN, "name": _STR},
    required=("external_id", "name"),
    update={"name": _STR},
    shown=("external_id", "name"),
    link=("items", "catalog-item"),
    plural="categories",
    has_created=False,
)
_DEFAULTS: dict[str, Any] = {
    "price": None,
    "image_full_url": None,
    "image_thumbnail_url": None,
    "images": [],
    "custom_metadata": {},
    "published": True,
    "inventory_policy": 0,
}
_CHECKS: dict[str, Callable[[Any], bool]] = {
    _STR: lambda v: isinstance(v, str),
    _NUM: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    _INT: lambda v: isinstance(v, int) and not isinstance(v, bool),
    _BOOL: lambda v: isinstance(v, bool),
    _LIST: lambda v: isinstance(v, list),
    _OBJ: lambda v: isinstance(v, dict),
}


def _checked(kind: Kind, attrs: dict[str, Any], allowed: dict[str, str], base: str) -> None:
    for name, value in attrs.items():
        want = allowed.get(name)
        if want is None:
            raise InvalidError(
                f"'{name}' is not a valid attribute of a {kind.type}",
                pointer=f"{base}/attributes/{name}",
            )
        if value is None and name not in kind.required:
            continue
        if not _CHECKS[want](value):
            raise InvalidError(
                f"'{name}' must be of type {want}", pointer=f"{base}/attributes/{name}"
            )
    if attrs.get("integration_type", "$custom") != "$custom":
        raise InvalidError(
            "Only the $custom integration type is supported.",
            pointer=f"{base}/attributes/integration_type",
        )
    if attrs.get("catalog_type", "$default") != "$default":
        raise InvalidError(
            "Only the $default catalog type is supported.",
            pointer=f"{base}/attributes/catalog_type",
        )
    if attrs.get("inventory_policy") not in (None, 0, 1, 2):
        raise InvalidError(
            "inventory_policy must be 0, 1 or 2", pointer=f"{base}/attributes/inventory_policy"
        )


def job_resource(job: JobRecord, rel: str, rtype: str, linked: list[str]) -> Resource:
    """A catalogue or coupon-code bulk job as Klaviyo shows it: ``errors`` per failed row,
    and once complete, the ids it created, updated or deleted under ``rel``."""
    attrs: dict[str, Any] = {
        "status": job.status,
        "created_at": iso(job.created),
        "total_count": job.total_count,
        "completed_count": job.completed_count,
        "failed_count": job.failed_count,
        "completed_at": iso(job.completed_at),
        "errors": [
            {
                "id": f"{job.id}-{k}",
                "code": code,
                "title": title,
                "detail": detail,
                "source": {"pointer": pointer},
            }
            for k, (code, title, detail, pointer, _) in enumerate(job.errors)
        ],
        "expires_at": iso(job.created + _JOB_EXPIRY),
    }
    shown = linked if job.status == JobStatus.COMPLETE else []
    return Resource(job.kind, job.id, attrs, relationships={rel: [(rtype, i) for i in shown]})


class CatalogsBackend(TagBackend):
    operations = frozenset(
        {
            *(
                f"{verb}_catalog_{noun}"
                for noun in ("item", "variant", "category")
                for verb in ("get", "create", "update", "delete")
            ),
            "create_back_in_stock_subscription",
            "get_catalog_items",
            "get_catalog_variants",
            "get_catalog_categories",
            "get_items_for_catalog_category",
            "get_item_ids_for_catalog_category",
            "add_items_to_catalog_category",
            "update_items_for_catalog_category",
            "remove_items_from_catalog_category",
            "get_categories_for_catalog_item",
            "get_category_ids_for_catalog_item",
            "add_categories_to_catalog_item",
            "update_categories_for_catalog_item",
            "remove_categories_from_catalog_item",
            "get_variants_for_catalog_item",
            "get_variant_ids_for_catalog_item",
            *(
                f"bulk_{verb}_catalog_{noun}"
                for verb in ("create", "update", "delete")
                for noun in ("items", "variants", "categories")
            ),
            "get_bulk_create_catalog_items_jobs",
            "get_bulk_create_catalog_items_job",
            "get_bulk_update_catalog_items_jobs",
            "get_bulk_update_catalog_items_job",
            "get_bulk_delete_catalog_items_jobs",
            "get_bulk_delete_catalog_items_job",
            "get_bulk_create_variants_jobs",
            "get_bulk_create_variants_job",
            "get_bulk_update_variants_jobs",
            "get_bulk_update_variants_job",
            "get_bulk_delete_variants_jobs",
            "get_bulk_delete_variants_job",
            "get_bulk_create_categories_jobs",
            "get_bulk_create_categories_job",
            "get_bulk_update_categories_jobs",
            "get_bulk_update_categories_job",
            "get_bulk_delete_categories_jobs",
            "get_bulk_delete_categories_job",
        }
    )

    def __init__(self, ctx: Context, seed: CatalogSeed | None = None) -> None:
        super().__init__(ctx)
        #: back-in-stock subscriptions: (profile id, variant id, channels, created)
        self.back_in_stock: list[tuple[str, str, tuple[str, ...], float]] = []
        self.records: dict[str, dict[str, CatalogRecord]] = {
            ITEM.type: {},
            VARIANT.type: {},
            CATEGORY.type: {},
        }
        #: ids each finished job created, updated or deleted (its relationship's linkage)
        self.job_ids: dict[str, list[str]] = {}
        if seed is not None:
            for kind, records in (
                (ITEM, seed.items),
                (VARIANT, seed.variants),
                (CATEGORY, seed.categories),
            ):
                for rec in records:
                    self.records[kind.type][rec.id] = rec
        jobs = required_jobs(ctx)
        for kind in (ITEM, VARIANT, CATEGORY):
            for verb in ("create", "update", "delete"):
                jobs.handlers[_job_type(kind, verb)] = self._runner(kind, verb)

    # -- single records ------------------------------------------------------------

    def resource(self, kind: Kind, rec: CatalogRecord) -> Resource:
        attrs = {name: rec.attrs.get(name, _DEFAULTS.get(name)) for name in kind.shown}
        if kind.has_created:
            attrs["created"] = iso(rec.created)
        attrs["updated"] = iso(rec.updated)
        if kind is VARIANT:
            # a variant's item is always known, and a listing of variants has no other
            # way to say whose they are (the spec's schema gives the linkage)
            item = next(iter(rec.links), None)
            rels: dict[str, Linkage] = {"item": (ITEM.type, item)} if item is not None else {}
            return Resource(kind.type, rec.id, attrs, relationships=rels)
        links_only = ("variants",) if kind is ITEM else ("items",)
        return Resource(kind.type, rec.id, attrs, links_only=links_only)

    def _get(self, kind: Kind, rid: str) -> CatalogRecord:
        rec = self.records[kind.type].get(rid)
        if rec is None:
            raise not_found(kind.type, rid)
        return rec

    def variants_of(self, item_id: str) -> list[CatalogRecord]:
        return sorted(
            (v for v in self.records[VARIANT.type].values() if item_id in v.links),
            key=lambda v: v.seq,
        )

    def _create(self, kind: Kind, data: Any, base: str) -> CatalogRecord:
        if not isinstance(data, dict) or data.get("type") != kind.type:
            raise InvalidError(f"data.type must be {kind.type!r}", pointer=f"{base}/type")
        attrs = attributes_of(data, f"{base}/attributes")
        _checked(kind, attrs, kind.create, base)
        for name in kind.required:
            if attrs.get(name) is None:
                raise InvalidError(
                    f"'{name}' is a required property", pointer=f"{base}/attributes/{name}"
                )
        rid = catalog_id(attrs["external_id"])
        table = self.records[kind.type]
        if rid in table:
            raise ConflictError(
                f"A {kind.type} with external_id {attrs['external_id']!r} already exists.",
                pointer=f"{base}/attributes/external_id",
            )
        links = self._links(kind, data, base, required=kind is VARIANT)
        now = self.ctx.now()
        kept = {k: v for k, v in attrs.items() if k not in ("integration_type", "catalog_type")}
        rec = CatalogRecord(self.store.next_seq(), rid, kept, now, now, set(links))
        table[rid] = rec
        self._mirror(kind, rec, set())
        return rec

    def _links(self, kind: Kind, data: dict[str, Any], base: str, *, required: bool) -> list[str]:
        if kind.link is None:
            return []
        name, rtype = kind.link
        many = kind is not VARIANT
        rels = data.get("relationships")
        if required and not (isinstance(rels, dict) and name in rels):
            raise InvalidError(
                f"relationships.{name} is required", pointer=f"{base}/relationships/{name}"
            )
        try:
            ids = relationship_ids(data, name, rtype, many=many)
        except InvalidError as exc:
            raise InvalidError(exc.detail, pointer=base + (exc.pointer or "")[5:]) from None
        target = self.records[rtype]
        for k, rid in enumerate(ids):
            if rid not in target:
                ptr = f"{base}/relationships/{name}/data" + (f"/{k}" if many else "")
                raise InvalidError(f"{rtype} {rid!r} does not exist", pointer=f"{ptr}/id")
        if required and not ids:
            raise InvalidError(
                f"relationships.{name} is required", pointer=f"{base}/relationships/{name}/data"
            )
        return ids

    def _mirror(self, kind: Kind, rec: CatalogRecord, before: set[str]) -> None:
        """Keep the other side of the item ↔ category relationship in step with ``rec``."""
        if kind is VARIANT:
            return
        other = self.records[CATEGORY.type if kind is ITEM else ITEM.type]
        for rid in before - rec.links:
            if rid in other:
                other[rid].links.discard(rec.id)
        for rid in rec.links - before:
            if rid in other:
                other[rid].links.add(rec.id)

    def _update(self, kind: Kind, data: Any, base: str, rid: str | None = None) -> CatalogRecord:
        if not isinstance(data, dict) or data.get("type") != kind.type:
            raise InvalidError(f"data.type must be {kind.type!r}", pointer=f"{base}/type")
        rid = rid or str(data.get("id") or "")
        rec = self._get(kind, rid)
        attrs = attributes_of(data, f"{base}/attributes")
        _checked(kind, attrs, kind.update, base)
        for name in kind.required:
            if name in attrs and attrs[name] is None:
                raise InvalidError(f"'{name}' cannot be null", pointer=f"{base}/attributes/{name}")
        rels = data.get("relationships")
        if kind is not VARIANT and isinstance(rels, dict) and kind.link and kind.link[0] in rels:
            before = set(rec.links)
            rec.links = set(self._links(kind, data, base, required=False))
            self._mirror(kind, rec, before)
        rec.attrs.update(attrs)
        rec.updated = self.ctx.now()
        return rec

    def _delete(self, kind: Kind, rid: str) -> None:
        rec = self._get(kind, rid)
        del self.records[kind.type][rid]
        before = set(rec.links)
        rec.links = set()
        self._mirror(kind, rec, before)
        if kind is ITEM:
            # Klaviyo deletes an item's variants with it
            for v in self.variants_of(rid):
                del self.records[VARIANT.type][v.id]

    # -- listings ------------------------------------------------------------------

    def _listing(
        self,
        call: Call,
        kind: Kind,
        records: list[CatalogRecord],
        *,
        ids_only: bool = False,
    ) -> Outcome:
        by_seq = {r.seq: r for r in records}

        def key(s: int) -> tuple[Any, ...]:
            return (by_seq[s].created, s)

        getters: dict[str, Callable[[int], Any]] = {
            "ids": lambda s: by_seq[s].id,
            "title": lambda s: by_seq[s].attrs.get("title"),
            "name": lambda s: by_seq[s].attrs.get("name"),
            "sku": lambda s: by_seq[s].attrs.get("sku"),
            "published": lambda s: by_seq[s].attrs.get("published", True),
            "category.id": lambda s: list(by_seq[s].links),
            "item.id": lambda s: list(by_seq[s].links),
        }
        page = page_of(call, sorted(by_seq, key=key), key, getters)
        items = [
            Resource(kind.type, by_seq[s].id, {}) if ids_only else self.resource(kind, by_seq[s])
            for s in page.items
        ]
        included: list[Resource] = []
        if not ids_only and kind is ITEM and "variants" in call.query.include:
            included = self._include_variants(items)
        return Outcome(
            data=Page(items=items, next_cursor=page.next_cursor, prev_cursor=page.prev_cursor),
            included=included,
            identifiers_only=ids_only,
        )

    def _include_variants(self, items: list[Resource]) -> list[Resource]:
        included: list[Resource] = []
        for r in items:
            variants = self.variants_of(r.id)
            r.relationships["variants"] = [(VARIANT.type, v.id) for v in variants]
            r.links_only = ()
            included += [self.resource(VARIANT, v) for v in variants]
        return included

    def _all(self, kind: Kind) -> list[CatalogRecord]:
        return list(self.records[kind.type].values())

    def get_catalog_items(self, call: Call) -> Outcome:
        return self._listing(call, ITEM, self._all(ITEM))

    def get_catalog_variants(self, call: Call) -> Outcome:
        return self._listing(call, VARIANT, self._all(VARIANT))

    def get_catalog_categories(self, call: Call) -> Outcome:
        return self._listing(call, CATEGORY, self._all(CATEGORY))

    def get_catalog_item(self, call: Call) -> Outcome:
        found = self.resource(ITEM, self._get(ITEM, self.path_id(call)))
        included = self._include_variants([found]) if "variants" in call.query.include else []
        return Outcome(data=found, included=included)

    def get_catalog_variant(self, call: Call) -> Outcome:
        return Outcome(data=self.resource(VARIANT, self._get(VARIANT, self.path_id(call))))

    def get_catalog_category(self, call: Call) -> Outcome:
        return Outcome(data=self.resource(CATEGORY, self._get(CATEGORY, self.path_id(call))))

    def _create_call(self, call: Call, kind: Kind) -> Outcome:
        rec = self._create(kind, data_of(call.body, kind.type), "/data")
        return Outcome(data=self.resource(kind, rec))

    def create_catalog_item(self, call: Call) -> Outcome:
        return self._create_call(call, ITEM)

    def create_catalog_variant(self, call: Call) -> Outcome:
        return self._create_call(call, VARIANT)

    def create_catalog_category(self, call: Call) -> Outcome:
        return self._create_call(call, CATEGORY)

    def _update_call(self, call: Call, kind: Kind) -> Outcome:
        rid = self.path_id(call)
        self._get(kind, rid)
        rec = self._update(kind, data_of(call.body, kind.type), "/data", rid)
        return Outcome(data=self.resource(kind, rec))

    def update_catalog_item(self, call: Call) -> Outcome:
        return self._update_call(call, ITEM)

    def update_catalog_variant(self, call: Call) -> Outcome:
        return self._update_call(call, VARIANT)

    def update_catalog_category(self, call: Call) -> Outcome:
        return self._update_call(call, CATEGORY)

    def delete_catalog_item(self, call: Call) -> Outcome:
        self._delete(ITEM, self.path_id(call))
        return Outcome()

    def delete_catalog_variant(self, call: Call) -> Outcome:
        self._delete(VARIANT, self.path_id(call))
        return Outcome()

    def delete_catalog_category(self, call: Call) -> Outcome:
        self._delete(CATEGORY, self.path_id(call))
        return Outcome()

    # -- relationships -------------------------------------------------------------

    def _linked(self, call: Call, kind: Kind, other: Kind, ids_only: bool) -> Outcome:
        rec = self._get(kind, self.path_id(call))
        table = self.records[other.type]
        if kind is ITEM and other is VARIANT:
            records = self.variants_of(rec.id)
        else:
            records = [table[i] for i in rec.links if i in table]
        return self._listing(call, other, records, ids_only=ids_only)

    def get_items_for_catalog_category(self, call: Call) -> Outcome:
        return self._linked(call, CATEGORY, ITEM, ids_only=False)

    def get_item_ids_for_catalog_category(self, call: Call) -> Outcome:
        return self._linked(call, CATEGORY, ITEM, ids_only=True)

    def get_categories_for_catalog_item(self, call: Call) -> Outcome:
        return self._linked(call, ITEM, CATEGORY, ids_only=False)

    def get_category_ids_for_catalog_item(self, call: Call) -> Outcome:
        return self._linked(call, ITEM, CATEGORY, ids_only=True)

    def get_variants_for_catalog_item(self, call: Call) -> Outcome:
        return self._linked(call, ITEM, VARIANT, ids_only=False)

    def get_variant_ids_for_catalog_item(self, call: Call) -> Outcome:
        return self._linked(call, ITEM, VARIANT, ids_only=True)

    def _edit_links(self, call: Call, kind: Kind, other: Kind, how: str) -> Outcome:
        rec = self._get(kind, self.path_id(call))
        ids = identifier_list(call.body, other.type)
        table = self.records[other.type]
        for k, rid in enumerate(ids):
            if rid not in table:
                raise InvalidError(f"{other.type} {rid!r} does not exist", pointer=f"/data/{k}/id")
        before = set(rec.links)
        if how == "add":
            rec.links |= set(ids)
        elif how == "remove":
            rec.links -= set(ids)
        else:
            rec.links = set(ids)
        self._mirror(kind, rec, before)
        rec.updated = self.ctx.now()
        return Outcome()

    def add_items_to_catalog_category(self, call: Call) -> Outcome:
        return self._edit_links(call, CATEGORY, ITEM, "add")

    def update_items_for_catalog_category(self, call: Call) -> Outcome:
        return self._edit_links(call, CATEGORY, ITEM, "set")

    def remove_items_from_catalog_category(self, call: Call) -> Outcome:
        return self._edit_links(call, CATEGORY, ITEM, "remove")

    def add_categories_to_catalog_item(self, call: Call) -> Outcome:
        return self._edit_links(call, ITEM, CATEGORY, "add")

    def update_categories_for_catalog_item(self, call: Call) -> Outcome:
        return self._edit_links(call, ITEM, CATEGORY, "set")

    def remove_categories_from_catalog_item(self, call: Call) -> Outcome:
        return self._edit_links(call, ITEM, CATEGORY, "remove")

    # -- back in stock -------------------------------------------------------------

    def create_back_in_stock_subscription(self, call: Call) -> Outcome:
        data = data_of(call.body, "back-in-stock-subscription")
        attrs = attributes_of(data)
        channels = attrs.get("channels")
        if (
            not isinstance(channels, list)
            or not channels
            or any(c not in _BIS_CHANNELS for c in channels)
        ):
            raise InvalidError(
                f"channels must be a non-empty list of {', '.join(_BIS_CHANNELS)}",
                pointer="/data/attributes/channels",
            )
        variant_ids = relationship_ids(data, "variant", VARIANT.type, many=False)
        if not variant_ids:
            raise InvalidError(
                "relationships.variant is required", pointer="/data/relationships/variant"
            )
        if variant_ids[0] not in self.records[VARIANT.type]:
            raise InvalidError(
                f"catalog-variant {variant_ids[0]!r} does not exist",
                pointer="/data/relationships/variant/data/id",
            )
        profile = self._subscriber(attrs.get("profile"))
        self.back_in_stock.append((profile, variant_ids[0], tuple(channels), self.ctx.now()))
        return Outcome()

    def _subscriber(self, wrapper: Any) -> str:
        """The subscribing profile's id: found by id or identifier, else created (as Klaviyo
        does for a shopper who only left an email address)."""
        from kbridge.emulator.backend.profiles import IDENTIFIERS, apply_attributes

        ptr = "/data/attributes/profile/data"
        data = wrapper.get("data") if isinstance(wrapper, dict) else None
        attrs = data.get("attributes") if isinstance(data, dict) else None
        if not isinstance(data, dict) or not isinstance(attrs, dict):
            raise InvalidError("profile.data with attributes is required", pointer=ptr)
        store = self.store
        if attrs.get("id"):
            found = store.profile(str(attrs["id"]))
            if found is None:
                raise InvalidError(f"profile {attrs['id']!r} does not exist", pointer=f"{ptr}/id")
            return found.id
        given = {k: attrs[k] for k in IDENTIFIERS if isinstance(attrs.get(k), str)}
        if not given:
            raise InvalidError(
                "a profile needs an id, email, phone_number or external_id",
                pointer=f"{ptr}/attributes",
            )
        for name, value in given.items():
            hit = store.find_identifier(name, value)
            if hit is not None:
                return hit.id
        now = self.ctx.now()
        p = store.new_profile(now)
        store.change_profile(p, now, lambda: apply_attributes(p, given, data))
        return p.id

    # -- bulk jobs -----------------------------------------------------------------

    def _bulk(self, call: Call, kind: Kind, verb: str) -> Outcome:
        jtype = _job_type(kind, verb)
        data = data_of(call.body, jtype)
        attrs = attributes_of(data)
        wrapper = attrs.get(kind.plural)
        rows = wrapper.get("data") if isinstance(wrapper, dict) else None
        ptr = f"/data/attributes/{kind.plural}/data"
        if not isinstance(rows, list) or not rows:
            raise InvalidError(f"{kind.plural}.data must be a non-empty list", pointer=ptr)
        if len(rows) > MAX_BULK:
            raise InvalidError(
                f"at most {MAX_BULK} {kind.plural} per job (got {len(rows)})", pointer=ptr
            )
        job = required_jobs(self.ctx).schedule(jtype, rows, total=len(rows))
        self.job_ids[job.id] = []
        return Outcome(data=self._job_resource(kind, job))

    def _runner(self, kind: Kind, verb: str) -> Callable[[JobRecord], None]:
        def run(job: JobRecord) -> None:
            done = self.job_ids.setdefault(job.id, [])
            for k, row in enumerate(job.payload):
                base = f"/data/attributes/{kind.plural}/data/{k}"
                original = row if isinstance(row, dict) else {"value": row}
                try:
                    if verb == "create":
                        rid = self._create(kind, row, base).id
                    elif verb == "update":
                        rid = self._update(kind, row, base).id
                    else:
                        if not isinstance(row, dict) or row.get("type") != kind.type:
                            raise InvalidError(
                                f"data.type must be {kind.type!r}", pointer=f"{base}/type"
                            )
                        rid = str(row.get("id") or "")
                        self._delete(kind, rid)
                except EmulatorBackendError as exc:
                    job.failed_count += 1
                    job.errors.append(
                        (exc.code, exc.title, exc.detail, exc.pointer or base, original)
                    )
                    continue
                job.completed_count += 1
                done.append(rid)

        return run

    def _job_resource(self, kind: Kind, job: JobRecord) -> Resource:
        return job_resource(job, kind.plural, kind.type, self.job_ids.get(job.id, []))

    def _jobs(self, call: Call, kind: Kind, verb: str) -> Outcome:
        jtype = _job_type(kind, verb)
        jobs = {j.seq: j for j in self.store.jobs.values() if j.kind == jtype}

        def key(s: int) -> tuple[Any, ...]:
            return (jobs[s].created, s)

        getters: dict[str, Callable[[int], Any]] = {"status": lambda s: str(jobs[s].status)}
        page = page_of(call, sorted(jobs, key=key), key, getters)
        return page_outcome(page, lambda s: self._job_resource(kind, jobs[s]))

    def _job(self, call: Call, kind: Kind, verb: str) -> Outcome:
        jtype = _job_type(kind, verb)
        jid = call.path_params.get("job_id") or call.path_params.get("id") or ""
        job = self.store.jobs.get(jid)
        if job is None or job.kind != jtype:
            raise not_found(jtype, jid)
        res = self._job_resource(kind, job)
        included: list[Resource] = []
        if kind.plural in call.query.include and verb != "delete":
            table = self.records[kind.type]
            included = [
                self.resource(kind, table[i]) for i in self.job_ids.get(job.id, []) if i in table
            ]
        return Outcome(data=res, included=included)

    def bulk_create_catalog_items(self, call: Call) -> Outcome:
        return self._bulk(call, ITEM, "create")

    def bulk_update_catalog_items(self, call: Call) -> Outcome:
        return self._bulk(call, ITEM, "update")

    def bulk_delete_catalog_items(self, call: Call) -> Outcome:
        return self._bulk(call, ITEM, "delete")

    def bulk_create_catalog_variants(self, call: Call) -> Outcome:
        return self._bulk(call, VARIANT, "create")

    def bulk_update_catalog_variants(self, call: Call) -> Outcome:
        return self._bulk(call, VARIANT, "update")

    def bulk_delete_catalog_variants(self, call: Call) -> Outcome:
        return self._bulk(call, VARIANT, "delete")

    def bulk_create_catalog_categories(self, call: Call) -> Outcome:
        return self._bulk(call, CATEGORY, "create")

    def bulk_update_catalog_categories(self, call: Call) -> Outcome:
        return self._bulk(call, CATEGORY, "update")

    def bulk_delete_catalog_categories(self, call: Call) -> Outcome:
        return self._bulk(call, CATEGORY, "delete")

    def get_bulk_create_catalog_items_jobs(self, call: Call) -> Outcome:
        return self._jobs(call, ITEM, "create")

    def get_bulk_create_catalog_items_job(self, call: Call) -> Outcome:
        return self._job(call, ITEM, "create")

    def get_bulk_update_catalog_items_jobs(self, call: Call) -> Outcome:
        return self._jobs(call, ITEM, "update")

    def get_bulk_update_catalog_items_job(self, call: Call) -> Outcome:
        return self._job(call, ITEM, "update")

    def get_bulk_delete_catalog_items_jobs(self, call: Call) -> Outcome:
        return self._jobs(call, ITEM, "delete")

    def get_bulk_delete_catalog_items_job(self, call: Call) -> Outcome:
        return self._job(call, ITEM, "delete")

    def get_bulk_create_variants_jobs(self, call: Call) -> Outcome:
        return self._jobs(call, VARIANT, "create")

    def get_bulk_create_variants_job(self, call: Call) -> Outcome:
        return self._job(call, VARIANT, "create")

    def get_bulk_update_variants_jobs(self, call: Call) -> Outcome:
        return self._jobs(call, VARIANT, "update")

    def get_bulk_update_variants_job(self, call: Call) -> Outcome:
        return self._job(call, VARIANT, "update")

    def get_bulk_delete_variants_jobs(self, call: Call) -> Outcome:
        return self._jobs(call, VARIANT, "delete")

    def get_bulk_delete_variants_job(self, call: Call) -> Outcome:
        return self._job(call, VARIANT, "delete")

    def get_bulk_create_categories_jobs(self, call: Call) -> Outcome:
        return self._jobs(call, CATEGORY, "create")

    def get_bulk_create_categories_job(self, call: Call) -> Outcome:
        return self._job(call, CATEGORY, "create")

    def get_bulk_update_categories_jobs(self, call: Call) -> Outcome:
        return self._jobs(call, CATEGORY, "update")

    def get_bulk_update_categories_job(self, call: Call) -> Outcome:
        return self._job(call, CATEGORY, "update")

    def get_bulk_delete_categories_jobs(self, call: Call) -> Outcome:
        return self._jobs(call, CATEGORY, "delete")

    def get_bulk_delete_categories_job(self, call: Call) -> Outcome:
        return self._job(call, CATEGORY, "delete")


def _job_type(kind: Kind, verb: str) -> str:
    return f"{kind.type}-bulk-{verb}-job"
