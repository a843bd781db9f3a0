"""SQL shared by the analyses: the few pieces where DuckDB and PostgreSQL differ.

Analyses write portable SQL (``?`` placeholders work in both dialects;
``CAST(? AS TIMESTAMPTZ)``, ``EXTRACT(EPOCH FROM …)``, ``date_trunc`` and
window functions too) and ask here for what differs: reading a JSON key as
text (DuckDB reads a key starting with ``$`` as a JSONPath, so keys are
always quoted inside a path there), and whether a table exists yet (a
warehouse synced with ``--streams`` has only some). Timestamps cross into
Python as epoch seconds (floats): DuckDB would need ``pytz`` to hand back
``TIMESTAMPTZ`` values.
"""

# Identifiers and JSON paths in SQL text are kbridge's own constants; values are bound.
# ruff: noqa: S608

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime

from kbridge.analytics.errors import AnalyticsError, MissingTableError
from kbridge.core.clock import utc
from kbridge.warehouse import Warehouse

__all__ = [
    "DAY",
    "accounts",
    "epoch",
    "from_epoch",
    "in_list",
    "iso",
    "json_text",
    "month_starts",
    "require_tables",
    "resolve_as_of",
    "seconds",
    "table_exists",
    "table_names",
]

DAY = 86400.0
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


def table_names(warehouse: Warehouse) -> frozenset[str]:
    """Every table of the warehouse's current schema: one catalogue query where an analysis
    would otherwise ask :func:`table_exists` several times (each one costs as much)."""
    return frozenset(
        str(name)
        for (name,) in warehouse.query(
            "select table_name from information_schema.tables where table_schema = current_schema()"
        )
    )


def require_tables(warehouse: Warehouse, *names: str) -> None:
    """Raise :class:`MissingTableError` naming those of ``names`` the warehouse lacks, so an
    analysis of a partial sync says what to sync instead of failing on its SQL."""
    present = table_names(warehouse)  # one catalogue query, however many names
    missing = [n for n in names if n not in present]
    if missing:
        raise MissingTableError(missing)


def seconds(when: datetime | None) -> float | None:
    """Seconds since the epoch of an aware datetime (None stays None)."""
    if when is None:
        return None
    if when.tzinfo is None:
        raise ValueError("analysis times must be timezone-aware (UTC)")
    return when.timestamp()


def epoch(expr: str) -> str:
    """Seconds since 1970 of a timestamp expression, as a double in both dialects."""
    return f"CAST(EXTRACT(EPOCH FROM {expr}) AS DOUBLE PRECISION)"


def in_list(values: Sequence[str]) -> str:
    """``(?, ?, …)`` for ``IN`` with one placeholder per value."""
    if not values:
        raise ValueError("an IN list needs at least one value")
    return "(" + ", ".join("?" for _ in values) + ")"


def iso(ts: float) -> str:
    """Epoch seconds as an RFC 3339 string (what ``CAST(? AS TIMESTAMPTZ)`` binds)."""
    return from_epoch(ts).isoformat()


def from_epoch(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def accounts(warehouse: Warehouse) -> list[str]:
    """Accounts that have synced profiles, sorted."""
    require_tables(warehouse, "profiles")
    rows = warehouse.query("SELECT DISTINCT account_id FROM profiles ORDER BY account_id")
    return [str(r[0]) for r in rows]


def resolve_as_of(warehouse: Warehouse, account_id: str, as_of: datetime | None) -> float:
    """The analysis date in epoch seconds: ``as_of``, or the account's latest event
    (else its latest profile change) — the warehouse's own "now", so an analysis of
    an old snapshot is reproducible and no wall clock is read."""
    if as_of is not None:
        return utc(as_of).timestamp()
    require_tables(warehouse, "profiles", "events")
    row = warehouse.query(
        f"SELECT (SELECT MAX({epoch('datetime')}) FROM events WHERE account_id = ?),"
        f" (SELECT MAX({epoch('COALESCE(updated, created)')}) FROM profiles"
        " WHERE account_id = ?)",
        [account_id, account_id],
    )[0]
    latest = row[0] if row[0] is not None else row[1]
    if latest is None:
        raise AnalyticsError(
            f"no profiles or events for account {account_id!r} in the warehouse: "
            "run `kbridge sync` first (or pick the account with --account)"
        )
    # one second past the latest record, so "before as_of" includes it
    return float(latest) + 1.0


def month_starts(as_of: float, months: int) -> list[float]:
    """The first instants of the ``months`` calendar months up to and including
    ``as_of``'s month, oldest first (UTC)."""
    d = from_epoch(as_of)
    y, m = d.year, d.month
    out = []
    for _ in range(months):
        out.append(datetime(y, m, 1, tzinfo=UTC).timestamp())
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    return out[::-1]
