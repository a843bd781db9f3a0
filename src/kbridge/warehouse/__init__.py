"""The warehouse: a storage protocol and one module per dialect (DuckDB, PostgreSQL).

May import: core only.

    wh = open_warehouse("duckdb:///kbridge.duckdb")     # or "postgresql://…"
    wh.migrate(tables)
    wh.commit(Batch(account_id).upsert(table, rows).set_state("profiles", "", {...}))
"""

from __future__ import annotations

from kbridge.warehouse.base import (
    Batch,
    Capabilities,
    DeleteUnseen,
    DeleteWhere,
    StateUpdate,
    Upsert,
    Warehouse,
)
from kbridge.warehouse.errors import (
    DestinationUnavailableError,
    DestinationURLError,
    SchemaError,
    WarehouseError,
)
from kbridge.warehouse.purge import purge_profiles
from kbridge.warehouse.schema import SEEN_TABLE, STATE_TABLE, Column, ColumnType, Table, table

__all__ = [
    "SEEN_TABLE",
    "STATE_TABLE",
    "Batch",
    "Capabilities",
    "Column",
    "ColumnType",
    "DeleteUnseen",
    "DeleteWhere",
    "DestinationURLError",
    "DestinationUnavailableError",
    "SchemaError",
    "StateUpdate",
    "Table",
    "Upsert",
    "Warehouse",
    "WarehouseError",
    "open_warehouse",
    "purge_profiles",
    "table",
]


def open_warehouse(url: str) -> Warehouse:
    """A warehouse from a destination URL.

    ``duckdb:///path.duckdb`` (relative: ``duckdb:///./x.duckdb``; ``duckdb:///:memory:``),
    a bare path ending in ``.duckdb``/``.db``, or ``postgresql://…`` / ``postgres://…``.
    """
    if url.startswith(("postgresql://", "postgres://")):
        from kbridge.warehouse.postgres import PostgresWarehouse

        return PostgresWarehouse(url)
    if url.startswith("duckdb://"):
        path = url.removeprefix("duckdb://")
        path = path[1:] if path.startswith("/") and path[1:2] in (".", ":") else path
        if not path:
            raise DestinationURLError("duckdb URL has no path: use duckdb:///path/to/file.duckdb")
    elif url.endswith((".duckdb", ".db")) and "://" not in url:
        path = url
    else:
        raise DestinationURLError(
            f"unknown destination {url!r}: use duckdb:///path.duckdb or postgresql://user@host/db"
        )
    from kbridge.warehouse.duckdb import DuckDBWarehouse

    return DuckDBWarehouse(path)
