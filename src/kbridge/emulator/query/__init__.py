"""The parsed form of a request's query, shared by http/ (which builds it from
the URL and validates it against the catalogue) and backend/ (which answers it).
No HTTP here."""

from __future__ import annotations

from kbridge.emulator.query.cursor import InvalidCursorError, decode_cursor, encode_cursor
from kbridge.emulator.query.model import Condition, FilterValue, Page, Query, Sort

__all__ = [
    "Condition",
    "FilterValue",
    "InvalidCursorError",
    "Page",
    "Query",
    "Sort",
    "decode_cursor",
    "encode_cursor",
]
