"""Catalogue and coupon records, shared by their backends and the generator.

Klaviyo's catalogue ids are ``$custom:::$default:::<external_id>`` (the only
integration and catalogue types it supports), a coupon's id is its
``external_id`` and a coupon code's is ``<coupon id>-<unique code>``, so ids
are derived rather than minted: re-creating a deleted record gives it back
its id, as Klaviyo does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CATALOG_PREFIX",
    "CatalogRecord",
    "CatalogSeed",
    "CouponCodeRecord",
    "CouponRecord",
    "catalog_id",
]

CATALOG_PREFIX = "$custom:::$default:::"


def catalog_id(external_id: str) -> str:
    return CATALOG_PREFIX + external_id


@dataclass(slots=True)
class CatalogRecord:
    """A catalogue item, variant or category: its spec attributes kept as given.

    ``links`` holds the ids on the other side of the record's many-to-many or
    to-one relationship: an item's categories, a category's items, a
    variant's item (one id).
    """

    seq: int
    id: str
    attrs: dict[str, Any]
    created: float
    updated: float
    links: set[str] = field(default_factory=set)


@dataclass(slots=True)
class CouponRecord:
    seq: int
    id: str
    description: str | None
    monitor_configuration: dict[str, Any] | None
    created: float


@dataclass(slots=True)
class CouponCodeRecord:
    seq: int
    id: str
    coupon_id: str
    unique_code: str
    expires_at: float
    status: str
    created: float
    profile_id: str | None = None


@dataclass(slots=True)
class CatalogSeed:
    """The catalogue and coupons a generated account starts with."""

    items: list[CatalogRecord] = field(default_factory=list)
    variants: list[CatalogRecord] = field(default_factory=list)
    categories: list[CatalogRecord] = field(default_factory=list)
    coupons: list[CouponRecord] = field(default_factory=list)
    codes: list[CouponCodeRecord] = field(default_factory=list)
