"""Keyset pagination over an ordered index, stable while records are inserted.

A page position is the sort key of the last (or, going back, first) record
served, which always ends in the record's insertion sequence, so keys are
unique. A new record lands either before the position (never served in this
pass) or after it (served later, once): nothing is skipped or repeated.
Cursors carry a *scope* (operation, sort and filters) and are refused with
``InvalidError(parameter="page[cursor]")`` elsewhere.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from typing import Any

from kbridge.emulator.backend.errors import InvalidError
from kbridge.emulator.query import InvalidCursorError, Page, decode_cursor, encode_cursor

__all__ = ["Key", "paginate"]

Key = tuple[Any, ...]


def _decode(cursor: str, scope: str) -> tuple[bool, Key]:
    try:
        parts = decode_cursor(cursor)
    except InvalidCursorError:
        raise InvalidError(
            "page[cursor] is not a cursor this server issued", parameter="page[cursor]"
        ) from None
    if len(parts) < 3 or parts[0] != scope or parts[1] not in ("n", "p"):
        raise InvalidError(
            "page[cursor] belongs to another request (operation, sort or filter differ); "
            "follow links.next/prev as given",
            parameter="page[cursor]",
        )
    return parts[1] == "p", tuple(parts[2:])


def paginate(
    ordered: Sequence[int],
    key: Callable[[int], Key],
    accept: Callable[[int], bool] | None,
    *,
    page_size: int,
    cursor: str | None,
    scope: str,
    descending: bool = False,
    lo: int = 0,
    hi: int | None = None,
) -> Page[int]:
    """One page of record numbers from ``ordered`` (sorted ascending by ``key``).

    ``accept`` filters records (``None`` accepts all); ``lo``/``hi`` bound the
    scan when a range filter on the sort key was already resolved by bisection.
    """
    hi = len(ordered) if hi is None else hi
    backwards = False
    if cursor is None:
        forward = not descending
        start = lo if forward else hi - 1
    else:
        backwards, position = _decode(cursor, scope)
        # Moving forward in the *served* order is "up" the index for ascending sorts.
        forward = descending == backwards
        if forward:
            start = bisect_right(ordered, position, lo, hi, key=key)
        else:
            start = bisect_left(ordered, position, lo, hi, key=key) - 1
    items, more = _scan(ordered, accept, start, lo, hi, forward, page_size)
    if backwards:
        items.reverse()
    if not items:
        return Page(items=[])
    first, last = key(items[0]), key(items[-1])
    if backwards:
        has_prev, has_next = more, True
    else:
        has_next = more
        has_prev = cursor is not None and _exists(
            ordered, accept, items[0], key, lo, hi, not forward
        )
    return Page(
        items=items,
        next_cursor=encode_cursor(scope, "n", *last) if has_next else None,
        prev_cursor=encode_cursor(scope, "p", *first) if has_prev else None,
    )


def _scan(
    ordered: Sequence[int],
    accept: Callable[[int], bool] | None,
    start: int,
    lo: int,
    hi: int,
    up: bool,
    size: int,
) -> tuple[list[int], bool]:
    """Up to ``size`` accepted records from ``start``; also whether one more exists."""
    items: list[int] = []
    step = 1 if up else -1
    i = start
    while lo <= i < hi:
        rec = ordered[i]
        if accept is None or accept(rec):
            if len(items) == size:
                return items, True
            items.append(rec)
        i += step
    return items, False


def _exists(
    ordered: Sequence[int],
    accept: Callable[[int], bool] | None,
    anchor: int,
    key: Callable[[int], Key],
    lo: int,
    hi: int,
    up: bool,
) -> bool:
    """Whether an accepted record lies beyond ``anchor`` in direction ``up``."""
    k = key(anchor)
    if up:
        start = bisect_right(ordered, k, lo, hi, key=key)
    else:
        start = bisect_left(ordered, k, lo, hi, key=key) - 1
    found, _ = _scan(ordered, accept, start, lo, hi, up, 1)
    return bool(found)
