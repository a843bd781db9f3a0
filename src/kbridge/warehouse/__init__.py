"""The warehouse: a storage protocol and one module per dialect (DuckDB, PostgreSQL).

May import: core only.

    wh = open_warehouse("duckdb:///kbridge.duckdb")     # or "postgresql://…"
    wh.migrate(tables)
    wh.commit(Batch(account_id).upsert(table, rows).set_state("profiles", "", {...}))
"""

from __future__ import annotations

from urllib.parse import parse_qsl

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


def open_warehouse(
    url: str, *, memory_limit: str | None = None, threads: int | None = None
) -> Warehouse:
    """A warehouse from a destination URL.

    ``duckdb:///path.duckdb`` (relative: ``duckdb:///./x.duckdb``; ``duckdb:///:memory:``),
    a bare path ending in ``.duckdb``/``.db``, or ``postgresql://…`` / ``postgres://…``.

    DuckDB only: ``memory_limit`` and ``threads`` are defaults for the connection's
    settings (see :class:`~kbridge.warehouse.duckdb.DuckDBWarehouse`); the URL's own
    ``?memory_limit=256MB&threads=2`` wins over them. A default ``memory_limit`` is not
    applied to ``:memory:`` (it would cap the database's size).
    """
    if url.startswith(("postgresql://", "postgres://")):
        from kbridge.warehouse.postgres import PostgresWarehouse

        return PostgresWarehouse(url)
    url, _, query = url.partition("?")
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
    if path == ":memory:":
        memory_limit = None
    settings = _duckdb_settings(query)
    memory_limit = settings.get("memory_limit", memory_limit)
    if "threads" in settings:
        try:
            threads = int(settings["threads"])
        except ValueError:
            raise DestinationURLError(
                f"duckdb URL: threads must be a whole number, not {settings['threads']!r}"
            ) from None
    from kbridge.warehouse.duckdb import DuckDBWarehouse

    return DuckDBWarehouse(path, memory_limit=memory_limit, threads=threads)


_DUCKDB_SETTINGS = ("memory_limit", "threads")


def _duckdb_settings(query: str) -> dict[str, str]:
    """``memory_limit``/``threads`` from a DuckDB URL's query; anything else is an error."""
    found = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(found) - set(_DUCKDB_SETTINGS))
    if unknown:
        raise DestinationURLError(
            f"duckdb URL: unknown setting(s) {', '.join(unknown)}; "
            f"known: {', '.join(_DUCKDB_SETTINGS)}"
        )
    return found
