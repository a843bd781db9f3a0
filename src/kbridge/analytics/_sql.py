"""SQL shared by the analyses: the few pieces where DuckDB and PostgreSQL differ.

Analyses write portable SQL (``?`` placeholders work in both dialects) and
ask here for what differs: reading a JSON key as text (DuckDB reads a key
starting with ``$`` as a JSONPath, so keys are always quoted inside a path
there), and whether a table exists yet (a warehouse synced with
``--streams`` has only some).
"""

from __future__ import annotations

import re
from datetime import datetime

from kbridge.warehouse import Warehouse

__all__ = ["json_text", "seconds", "table_exists"]

_KEY = re.compile(r"^[A-Za-z0-9_$ ]+$")


def json_text(warehouse: Warehouse, column: str, *path: str | int) -> str:
    """The text at ``path`` inside JSON ``column`` (NULL when absent)."""
    for key in path:
        if isinstance(key, str) and not _KEY.match(key):
            raise ValueError(f"unsupported JSON key {key!r}")
    if warehouse.capabilities.dialect == "postgresql":
        return f"({column} #>> '{{{','.join(str(k) for k in path)}}}')"
    parts = "".join(f"[{k}]" if isinstance(k, int) else f'."{k}"' for k in path)
    return f"json_extract_string({column}, '${parts}')"


def table_exists(warehouse: Warehouse, name: str) -> bool:
    """Whether ``name`` is a table of the warehouse's current schema."""
    rows = warehouse.query(
        "select count(*) from information_schema.tables"
        " where table_name = ? and table_schema = current_schema()",
        [name],
    )
    return bool(rows and rows[0][0])


def seconds(when: datetime | None) -> float | None:
    """Seconds since the epoch of an aware datetime (None stays None)."""
    if when is None:
        return None
    if when.tzinfo is None:
        raise ValueError("analysis times must be timezone-aware (UTC)")
    return when.timestamp()
