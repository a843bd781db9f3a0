"""Facts about every stable Klaviyo operation, generated from Klaviyo's OpenAPI spec.

The client paces requests and checks filters with these facts; the emulator
enforces the same ones. Neither side invents a limit or a scope: both read
them here. Regenerate with ``make catalog`` (``scripts/gen_catalog.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache

from kbridge.catalog._operations import OPERATIONS, REVISION, SPEC_VERSION
from kbridge.catalog.model import AltLimit, FilterField, Operation, RateLimit

__all__ = [
    "OPERATIONS",
    "REVISION",
    "SPEC_VERSION",
    "AltLimit",
    "FilterField",
    "Operation",
    "RateLimit",
    "UnknownOperationError",
    "all_operations",
    "by_tag",
    "get",
    "match",
]


class UnknownOperationError(LookupError):
    """No operation in the catalogue has this id or matches this method and path."""


@cache
def _by_id() -> dict[str, Operation]:
    index: dict[str, Operation] = {}
    for op in OPERATIONS:
        index[op.operation_id] = op
        for alias in op.aliases:
            index.setdefault(alias, op)
    return index


@cache
def _routes() -> dict[str, list[tuple[re.Pattern[str], Operation]]]:
    routes: dict[str, list[tuple[re.Pattern[str], Operation]]] = {}
    # Literal paths before templated ones, so /api/profiles/{id} never shadows
    # a fixed sibling path such as /api/profile-import.
    ordered = sorted(OPERATIONS, key=lambda o: (o.path.count("{"), o.path))
    for op in ordered:
        routes.setdefault(op.method, []).append((op.path_regex(), op))
    return routes


def all_operations() -> tuple[Operation, ...]:
    return OPERATIONS


def get(operation_id: str) -> Operation:
    """The operation with this id (or one of its aliases)."""
    try:
        return _by_id()[operation_id]
    except KeyError:
        raise UnknownOperationError(f"no Klaviyo operation named {operation_id!r}") from None


def match(method: str, path: str) -> tuple[Operation, dict[str, str]]:
    """The operation serving ``method path`` and its path parameters.

    ``path`` is a concrete URL path (``/api/profiles/01H…``); a trailing slash
    is accepted, as Klaviyo accepts it.
    """
    for pattern, op in _routes().get(method.upper(), ()):
        m = pattern.match(path)
        if m:
            return op, m.groupdict()
    raise UnknownOperationError(f"no Klaviyo operation serves {method.upper()} {path}")


def by_tag(tag: str) -> Iterator[Operation]:
    return (op for op in OPERATIONS if op.tag == tag)
