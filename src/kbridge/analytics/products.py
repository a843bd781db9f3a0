"""Top products by revenue, overall and per RFM segment, from order lines and the catalogue.

An **order line** is an event of the line metric (default ``Ordered Product``: Klaviyo's
integrations send one per product of an order, beside the order's ``Placed Order``). Its

* **product** is ``ProductID`` (else ``product_id``), matched to the synced catalogue:
  a catalogue item whose ``external_id`` is that id, else whose Klaviyo id is it (an
  integration may send the ``$custom:::$default:::…`` form), else the item of a variant
  whose ``sku`` is the line's ``SKU``. A line that matches nothing is **unmatched**: it
  is still counted, under its own id and ``ProductName``, and the notes say how many lines
  and how much revenue did not match (a product deleted from the catalogue, or an id the
  integration sends in another form);
* **revenue** is ``$value`` (else ``value``, else ``Price`` × ``Quantity``; 0 when none is
  a number), **quantity** ``Quantity`` (1 when absent).

Per segment, each line goes to its profile's RFM segment (:func:`kbridge.analytics.rfm`,
at the same ``as_of``); a line whose profile placed no order before ``as_of`` goes to
"No order". Products with the same revenue rank by name, so the order is reproducible.
"""

# Identifiers and JSON paths in SQL text are kbridge's own constants; values are bound.
# ruff: noqa: S608

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kbridge.analytics._sql import (
    epoch,
    from_epoch,
    iso,
    json_text,
    require_tables,
    resolve_as_of,
    seconds,
    table_names,
)
from kbridge.analytics.frame import Frame
from kbridge.analytics.rfm import rfm
from kbridge.warehouse import Warehouse

__all__ = ["NO_ORDER", "PRODUCT_COLUMNS", "SEGMENT_COLUMNS", "Products", "top_products"]

#: the segment of lines whose profile has no order before ``as_of`` (so no RFM segment)
NO_ORDER = "No order"
#: Klaviyo's id of a catalogue item from the default custom catalogue
_CUSTOM_PREFIX = "$custom:::$default:::"

PRODUCT_COLUMNS = (
    "rank",
    "product_id",
    "item_id",
    "name",
    "in_catalogue",
    "lines",
    "quantity",
    "customers",
    "revenue",
    "revenue_share",
)
SEGMENT_COLUMNS = (
    "segment",
    "rank",
    "product_id",
    "item_id",
    "name",
    "in_catalogue",
    "lines",
    "quantity",
    "customers",
    "revenue",
    "segment_revenue_share",
)


@dataclass(frozen=True, slots=True)
class Products:
    """``overall``: the top products, most revenue first (``notes``: lines, how many
    matched the catalogue, revenue); ``by_segment``: the top products of each RFM
    segment, segments in rule order."""

    as_of: datetime
    overall: Frame
    by_segment: Frame


@dataclass(slots=True)
class _Tally:
    product_id: str | None
    item_id: str | None
    name: str
    lines: int = 0
    quantity: float = 0.0
    revenue: float = 0.0
    customers: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class _Item:
    id: str
    external_id: str | None
    title: str


@dataclass(frozen=True, slots=True)
class _Catalogue:
    by_external: dict[str, _Item]
    by_id: dict[str, _Item]
    by_sku: dict[str, _Item]

    def match(self, product: str | None, sku: str | None) -> _Item | None:
        if product:
            found = self.by_external.get(product) or self.by_id.get(product)
            if found is None and product.startswith(_CUSTOM_PREFIX):
                found = self.by_external.get(product.removeprefix(_CUSTOM_PREFIX))
            if found is not None:
                return found
        return self.by_sku.get(sku) if sku else None


def _catalogue(warehouse: Warehouse, account_id: str, tables: frozenset[str]) -> _Catalogue:
    by_external: dict[str, _Item] = {}
    by_id: dict[str, _Item] = {}
    by_sku: dict[str, _Item] = {}
    if "catalog_items" in tables:
        for item_id, external, title in warehouse.query(
            "select id, external_id, title from catalog_items where account_id = ?", [account_id]
        ):
            entry = _Item(
                str(item_id),
                None if external is None else str(external),
                str(title or external or item_id),
            )
            by_id[str(item_id)] = entry
            if external:
                by_external[str(external)] = entry
    if "catalog_variants" in tables:
        for sku, item_id in warehouse.query(
            "select sku, item_id from catalog_variants where account_id = ? and sku is not null",
            [account_id],
        ):
            if item_id is not None and str(item_id) in by_id:
                by_sku[str(sku)] = by_id[str(item_id)]
    return _Catalogue(by_external, by_id, by_sku)


def _number(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _lines(
    warehouse: Warehouse, account_id: str, metric: str, start: float | None, end: float
) -> list[tuple[Any, ...]]:
    props = "e.event_properties"
    keys = ("ProductID", "product_id", "ProductName", "SKU", "$value", "value", "Price", "Quantity")
    texts = ", ".join(json_text(warehouse, props, k) for k in keys)
    where = "e.account_id = ? and m.name = ? and e.datetime < CAST(? AS TIMESTAMPTZ)"
    params: list[Any] = [account_id, metric, iso(end)]
    if start is not None:
        where += " and e.datetime >= CAST(? AS TIMESTAMPTZ)"
        params.append(iso(start))
    return warehouse.query(
        f"select e.profile_id, {texts} from events e"
        " join metrics m on m.account_id = e.account_id and m.id = e.metric_id"
        f" where {where} and e.profile_id is not null order by {epoch('e.datetime')}, e.id",
        params,
    )


def top_products(
    warehouse: Warehouse,
    account_id: str,
    *,
    since: datetime | None = None,
    as_of: datetime | None = None,
    top: int = 10,
    line_metric: str = "Ordered Product",
    order_metric: str = "Placed Order",
) -> Products:
    """The ``top`` products by revenue of the order lines in ``[since, as_of)``, overall
    and per RFM segment (the rules in this module's docstring)."""
    if top < 1:
        raise ValueError("top must be at least 1")
    require_tables(warehouse, "profiles", "events", "metrics")
    tables = table_names(warehouse)
    end = resolve_as_of(warehouse, account_id, as_of)
    start = seconds(since)
    catalogue = _catalogue(warehouse, account_id, tables)
    segments = rfm(warehouse, account_id, as_of=from_epoch(end), metric=order_metric)
    segment_of = dict(
        zip(
            segments.profiles.column("profile_id"),
            segments.profiles.column("segment"),
            strict=True,
        )
    )

    overall: dict[str, _Tally] = {}
    per_segment: dict[str, dict[str, _Tally]] = defaultdict(dict)
    lines = unmatched = 0
    revenue = unmatched_revenue = 0.0
    for profile, pid, pid2, name, sku, dollar, value, price, qty in _lines(
        warehouse, account_id, line_metric, start, end
    ):
        product = str(pid or pid2) if (pid or pid2) else None
        quantity = _number(qty)
        quantity = 1.0 if quantity is None else quantity
        amount = _number(dollar)
        if amount is None:
            amount = _number(value)
        if amount is None:
            unit = _number(price)
            amount = unit * quantity if unit is not None else 0.0
        matched = catalogue.match(product, str(sku) if sku else None)
        if matched is not None:
            key, shown = (
                f"item:{matched.id}",
                _Tally(matched.external_id, matched.id, matched.title),
            )
        else:
            unmatched += 1
            unmatched_revenue += amount
            product = product.removeprefix(_CUSTOM_PREFIX) if product else None
            label = str(name or product or sku or "(no product id)")
            # unmatched lines of one product id are one product; without an id, one name
            key = f"line:{product}" if product else f"name:{label}"
            shown = _Tally(product, None, label)
        lines += 1
        revenue += amount
        segment = segment_of.get(str(profile), NO_ORDER)
        for tallies in (overall, per_segment[segment]):
            t = tallies.get(key)
            if t is None:
                t = tallies[key] = _Tally(shown.product_id, shown.item_id, shown.name)
            t.lines += 1
            t.quantity += quantity
            t.revenue += amount
            t.customers.add(str(profile))

    def ranked(tallies: dict[str, _Tally]) -> list[_Tally]:
        return sorted(tallies.values(), key=lambda t: (-round(t.revenue, 2), t.name))

    def cells(t: _Tally) -> tuple[Any, ...]:
        return (
            t.product_id,
            t.item_id,
            t.name,
            t.item_id is not None,
            t.lines,
            round(t.quantity, 2),
            len(t.customers),
            round(t.revenue, 2),
        )

    overall_rows = [
        (k, *cells(t), round(t.revenue / revenue, 4) if revenue else 0.0)
        for k, t in enumerate(ranked(overall)[:top], 1)
    ]
    order = [*segments.segment_names(), NO_ORDER]
    segment_rows: list[tuple[Any, ...]] = []
    segment_revenue: dict[str, float] = {}
    for segment in order:
        mine = per_segment.get(segment)
        if not mine:
            continue
        total = sum(t.revenue for t in mine.values())
        segment_revenue[segment] = round(total, 2)
        for k, t in enumerate(ranked(mine)[:top], 1):
            share = round(t.revenue / total, 4) if total else 0.0
            segment_rows.append((segment, k, *cells(t), share))
    notes: dict[str, Any] = {
        "as_of": iso(end),
        "line_metric": line_metric,
        "lines": lines,
        "matched_lines": lines - unmatched,
        "unmatched_lines": unmatched,
        "unmatched_revenue": round(unmatched_revenue, 2),
        "revenue": round(revenue, 2),
        "products": len(overall),
        "catalogue_items": len(catalogue.by_id),
        "catalogue_synced": "catalog_items" in tables,
    }
    return Products(
        as_of=from_epoch(end),
        overall=Frame.of(
            PRODUCT_COLUMNS, overall_rows, title=f"Top {top} products by revenue", notes=notes
        ),
        by_segment=Frame.of(
            SEGMENT_COLUMNS,
            segment_rows,
            title=f"Top {top} products by revenue in each RFM segment",
            notes={"segment_revenue": segment_revenue, "top": top},
        ),
    )
