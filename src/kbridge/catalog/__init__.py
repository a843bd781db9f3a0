"""Facts about every stable Klaviyo operation, generated from Klaviyo's OpenAPI spec.

The client paces requests and checks filters with these facts; the emulator
enforces the same ones. Neither side invents a limit or a scope: both read
them here. The facts are data (``operations.jsonl`` beside this module, one
operation a line), read on first use: importing the catalogue costs nothing
until something asks it a question. Regenerate with ``make catalog``
(``scripts/gen_catalog.py``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from functools import cache

import orjson

from kbridge.catalog.model import AltLimit, FilterField, Operation, RateLimit

# Not typing's: importing typing (and pathlib) would cost more than reading the file.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

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


_DATA = os.path.join(os.path.dirname(__file__), "operations.jsonl")


@cache
def _header() -> dict[str, str]:
    # The revision is read on import by the client's defaults: its header line
    # alone spares them parsing the other 345.
    with open(_DATA, "rb") as f:
        header: dict[str, str] = orjson.loads(f.readline())
    return header


def _rate_limit(d: dict[str, Any]) -> RateLimit:
    return RateLimit(d["burst"], d["steady"], d.get("daily"))


def _operation(d: dict[str, Any]) -> Operation:
    return Operation(
        method=d["method"],
        path=d["path"],
        operation_id=d["operation_id"],
        tag=d["tag"],
        rate_limit=_rate_limit(d["rate_limit"]),
        scopes=tuple(d["scopes"]),
        success_status=d["success_status"],
        revision=d["revision"],
        aliases=tuple(d["aliases"]),
        auth=d["auth"],
        request_content_type=d["request_content_type"],
        # Lists, not generators, into tuple(): this runs at every process's first API call.
        filters=tuple(
            [
                FilterField(
                    f["name"],
                    single=tuple(f["single"]),
                    list=tuple(f["list"]),
                    none=tuple(f["none"]),
                    value_type=f["value_type"],
                    value_format=f["value_format"],
                )
                for f in d["filters"]
            ]
        ),
        sort=tuple(d["sort"]),
        include=tuple(d["include"]),
        fields={k: tuple(v) for k, v in d["fields"].items()},
        additional_fields={k: tuple(v) for k, v in d["additional_fields"].items()},
        page_size_param=d["page_size_param"],
        default_page_size=d["default_page_size"],
        max_page_size=d["max_page_size"],
        paginated=d["paginated"],
        alt_limits=tuple(
            [AltLimit(a["param"], a["value"], _rate_limit(a)) for a in d["alt_limits"]]
        ),
        path_params=tuple(d["path_params"]),
    )


@cache
def _records() -> list[dict[str, Any]]:
    with open(_DATA, "rb") as f:
        lines = f.read().splitlines()[1:]
    # One parse of the whole file as an array: a call per line costs more.
    records: list[dict[str, Any]] = orjson.loads(b"[" + b",".join(lines) + b"]")
    return records


# Operations are built when first asked for: a client that calls a handful of
# operations never pays for the other 340. Each is built once, so that get(),
# an alias and OPERATIONS all return the same object (Operation compares by
# identity); setdefault keeps the first if two threads race.
_built: dict[int, Operation] = {}


def _at(index: int) -> Operation:
    op = _built.get(index)
    if op is None:
        op = _built.setdefault(index, _operation(_records()[index]))
    return op


@cache
def _operations() -> tuple[Operation, ...]:
    return tuple([_at(i) for i in range(len(_records()))])


if TYPE_CHECKING:
    OPERATIONS: tuple[Operation, ...]
    REVISION: str
    SPEC_VERSION: str
else:

    def __getattr__(name: str) -> object:
        # Module attributes computed on first access (PEP 562), so that the
        # constants keep their names without the file being read at import.
        if name == "OPERATIONS":
            return _operations()
        if name == "REVISION":
            return _header()["revision"]
        if name == "SPEC_VERSION":
            return _header()["spec_version"]
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@cache
def _by_id() -> dict[str, int]:
    index: dict[str, int] = {}
    for i, record in enumerate(_records()):
        index[record["operation_id"]] = i
        for alias in record["aliases"]:
            index.setdefault(alias, i)
    return index


@cache
def _routes() -> dict[str, list[tuple[re.Pattern[str], Operation]]]:
    routes: dict[str, list[tuple[re.Pattern[str], Operation]]] = {}
    # Literal paths before templated ones, so /api/profiles/{id} never shadows
    # a fixed sibling path such as /api/profile-import.
    ordered = sorted(_operations(), key=lambda o: (o.path.count("{"), o.path))
    for op in ordered:
        routes.setdefault(op.method, []).append((op.path_regex(), op))
    return routes


def all_operations() -> tuple[Operation, ...]:
    """Every operation, sorted by path and method."""
    return _operations()


def get(operation_id: str) -> Operation:
    """The operation with this id (or one of its aliases)."""
    try:
        index = _by_id()[operation_id]
    except KeyError:
        raise UnknownOperationError(f"no Klaviyo operation named {operation_id!r}") from None
    return _at(index)


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
    """The operations Klaviyo files under ``tag`` (``"Profiles"``, ``"Campaigns"``…)."""
    return (op for op in _operations() if op.tag == tag)
