"""The account's shared vocabulary: integrations, metrics, products, and the properties of
each generated event.

The generator (``kbridge.emulator.datagen``) writes events with these metrics and
products, and the backends serve them (events' ``event_properties``, campaign history,
reports); both read the facts from here, so neither imports the other for them.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson

from kbridge.emulator.backend.ids import base62_id, mix64

__all__ = [
    "CATEGORIES",
    "HISTORIC_CAMPAIGNS",
    "INTEGRATIONS",
    "MESSAGE_SALT",
    "METRICS",
    "PRODUCTS",
    "event_properties",
    "event_properties_json",
    "order_items",
    "pack_order",
]

#: campaigns in a generated account's history: email events carry one in ``aux`` (mod this)
HISTORIC_CAMPAIGNS = 48
#: a historic campaign's message id is ``base62_id(seed, MESSAGE_SALT + campaign)``
MESSAGE_SALT = 7000

INTEGRATIONS: dict[str, dict[str, Any]] = {
    "klaviyo": {
        "object": "integration",
        "id": "0rG4eQ",
        "key": "klaviyo",
        "name": "Klaviyo",
        "category": "Internal",
    },
    "api": {
        "object": "integration",
        "id": "7FtS4J",
        "key": "api",
        "name": "API",
        "category": "API",
    },
    "shopify": {
        "object": "integration",
        "id": "0eMvjm",
        "key": "shopify",
        "name": "Shopify",
        "category": "eCommerce",
    },
}

#: (name, integration key) in metric-index order.
METRICS: tuple[tuple[str, str], ...] = (
    ("Received Email", "klaviyo"),
    ("Opened Email", "klaviyo"),
    ("Clicked Email", "klaviyo"),
    ("Bounced Email", "klaviyo"),
    ("Marked Email as Spam", "klaviyo"),
    ("Unsubscribed", "klaviyo"),
    ("Received SMS", "klaviyo"),
    ("Clicked SMS", "klaviyo"),
    ("Viewed Product", "shopify"),
    ("Added to Cart", "shopify"),
    ("Started Checkout", "shopify"),
    ("Placed Order", "shopify"),
    ("Ordered Product", "shopify"),
    ("Active on Site", "api"),
    ("Subscribed to List", "klaviyo"),
)
(
    M_RECEIVED,
    M_OPENED,
    M_CLICKED,
    M_BOUNCED,
    M_SPAM,
    M_UNSUBSCRIBED,
    M_RECEIVED_SMS,
    M_CLICKED_SMS,
    M_VIEWED,
    M_ADDED,
    M_CHECKOUT,
    M_ORDER,
    M_ORDERED_PRODUCT,
    M_ACTIVE,
    M_SUBSCRIBED,
) = range(len(METRICS))

#: (name, category, price)
PRODUCTS: tuple[tuple[str, str, float], ...] = (
    ("Trail Running Shoe", "Footwear", 129.0),
    ("Everyday Sneaker", "Footwear", 89.0),
    ("Wool Hiking Sock", "Footwear", 19.5),
    ("Merino Base Layer", "Apparel", 75.0),
    ("Rain Shell Jacket", "Apparel", 189.0),
    ("Organic Cotton Tee", "Apparel", 29.0),
    ("Fleece Pullover", "Apparel", 99.0),
    ("Insulated Bottle", "Accessories", 34.0),
    ("Canvas Tote", "Accessories", 24.0),
    ("Leather Belt", "Accessories", 49.0),
    ("Daypack 20L", "Bags", 119.0),
    ("Travel Duffel", "Bags", 159.0),
    ("Ceramic Pour-Over", "Home", 39.0),
    ("Linen Throw", "Home", 69.0),
    ("Scented Candle", "Home", 22.0),
    ("Yoga Mat", "Fitness", 58.0),
    ("Resistance Bands", "Fitness", 25.0),
    ("Foam Roller", "Fitness", 32.0),
    ("Face Serum", "Beauty", 44.0),
    ("Lip Balm Trio", "Beauty", 14.0),
)
CATEGORIES = tuple(sorted({p[1] for p in PRODUCTS}))


def order_items(aux: int) -> list[int]:
    """Product indexes packed into a Placed Order's ``aux`` (1-4 items, 8 bits each)."""
    count = aux & 0x7
    return [(aux >> (8 * (k + 1))) & 0xFF for k in range(count)]


def pack_order(items: list[int]) -> int:
    aux = len(items)
    for k, item in enumerate(items):
        aux |= item << (8 * (k + 1))
    return aux


def _order_properties(aux: int) -> dict[str, Any]:
    """Item fields of an order or checkout: a fresh top-level dict over shared, cached items."""
    return dict(_order_template(aux))


@lru_cache(maxsize=65536)
def _order_template(aux: int) -> dict[str, Any]:
    items = [PRODUCTS[i] for i in order_items(aux)]
    return {
        "ItemNames": [p[0] for p in items],
        "Items": [
            {"ProductName": p[0], "Categories": [p[1]], "ItemPrice": p[2], "Quantity": 1}
            for p in items
        ],
        "Categories": sorted({p[1] for p in items}),
        "ItemCount": len(items),
    }


@lru_cache(maxsize=4096)
def _message_id(seed: int, campaign: int) -> str:
    return base62_id(seed, MESSAGE_SALT + campaign)


def event_properties(
    seed: int, index: int, metric: int, aux: int, value: float
) -> tuple[dict[str, Any], str | None]:
    """The ``event_properties`` and ``unique_id`` of generated event ``index``.

    Derived on demand from what the columns hold, so 2M events cost no dicts.
    :func:`event_properties_json` writes the same properties as bytes for a
    first read of a page: change the two together (a test holds them equal).
    """
    if metric in (M_ORDER, M_CHECKOUT):
        props: dict[str, Any] = _order_properties(aux)
        props["$value"] = value
        if metric == M_ORDER:
            order_id = str(100000 + mix64(seed, index) % 900000)
            props["OrderId"] = order_id
            props["$event_id"] = order_id
            return props, order_id
        return props, None
    if metric in (M_VIEWED, M_ADDED, M_ORDERED_PRODUCT):
        props = _product_properties(aux)
        if metric == M_ORDERED_PRODUCT:
            props["$value"] = value
        return props, None
    if metric in (M_RECEIVED, M_OPENED, M_CLICKED, M_BOUNCED, M_SPAM, M_UNSUBSCRIBED):
        campaign = aux % HISTORIC_CAMPAIGNS
        props = {
            "Campaign Name": f"Weekly Edit #{campaign + 1}",
            "Subject": f"New in {CATEGORIES[campaign % len(CATEGORIES)]}",
            "$message": _message_id(seed, campaign),
        }
        if metric == M_CLICKED:
            props["URL"] = f"https://shop.example.com/collections/{campaign % len(CATEGORIES)}"
        if metric == M_BOUNCED:
            props["Bounce Type"] = "hard" if aux % 3 == 0 else "soft"
        return props, None
    if metric in (M_RECEIVED_SMS, M_CLICKED_SMS):
        return {"Message Name": f"SMS drop #{aux % HISTORIC_CAMPAIGNS + 1}"}, None
    if metric == M_ACTIVE:
        return {"page": f"https://shop.example.com/pages/{aux % 12}"}, None
    if metric == M_SUBSCRIBED:
        return {"List": "Newsletter", "Method": "Form"}, None
    return {}, None


def _product_properties(aux: int) -> dict[str, Any]:
    name, category, price = PRODUCTS[aux % len(PRODUCTS)]
    return {
        "ProductName": name,
        "ProductID": str(1000 + aux % len(PRODUCTS)),
        "SKU": f"SKU-{1000 + aux % len(PRODUCTS)}",
        "Categories": [category],
        "Price": price,
    }


def event_properties_json(seed: int, index: int, metric: int, aux: int, value: float) -> bytes:
    """``orjson.dumps`` of :func:`event_properties`' dict, byte for byte, from kept pieces.

    Serving a cold page of 1000 events built and serialised a dict per event;
    most of each is a function of the metric and ``aux`` alone, so that part is
    serialised once and kept, and only ``$value`` and the order id are
    written per event (in the same key order as the dict).
    """
    if metric == M_ORDER:
        order_id = b"%d" % (100000 + mix64(seed, index) % 900000)
        return b'%s"$value":%s,"OrderId":"%s","$event_id":"%s"}' % (
            _open_order(aux),
            orjson.dumps(value),
            order_id,
            order_id,
        )
    if metric == M_CHECKOUT:
        return b'%s"$value":%s}' % (_open_order(aux), orjson.dumps(value))
    if metric == M_ORDERED_PRODUCT:
        return b'%s"$value":%s}' % (_open_product(aux), orjson.dumps(value))
    # every other metric's properties depend on the seed, the metric and aux only
    return _constant_properties_json(seed, metric, aux)


def _open_object(props: dict[str, Any]) -> bytes:
    """``props`` serialised without its closing brace, ready for more members."""
    return orjson.dumps(props)[:-1] + (b"," if props else b"")


@lru_cache(maxsize=65536)
def _open_order(aux: int) -> bytes:
    return _open_object(_order_template(aux))


@lru_cache(maxsize=4096)
def _open_product(aux: int) -> bytes:
    return _open_object(_product_properties(aux))


@lru_cache(maxsize=4096)
def _constant_properties_json(seed: int, metric: int, aux: int) -> bytes:
    return orjson.dumps(event_properties(seed, 0, metric, aux, 0.0)[0])
