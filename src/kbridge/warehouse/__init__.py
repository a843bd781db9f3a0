"""The warehouse: a storage protocol and one module per dialect (DuckDB, PostgreSQL).

May import: core only.

    wh = open_warehouse("duckdb:///kbridge.duckdb")     # ./kbridge.duckdb; or "postgresql://…"
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
    FromJson,
    PageInfo,
    PageLoader,
    PageRows,
    StateUpdate,
    StreamLocker,
    Upsert,
    Warehouse,
)
from kbridge.warehouse.errors import (
    DestinationBusyError,
    DestinationLockedError,
    DestinationUnavailableError,
    DestinationURLError,
    PageShapeError,
    SchemaError,
    WarehouseError,
)
from kbridge.warehouse.purge import Compactable, compact_warehouse, purge_profiles
from kbridge.warehouse.schema import SEEN_TABLE, STATE_TABLE, Column, ColumnType, Table, table

__all__ = [
    "SEEN_TABLE",
    "STATE_TABLE",
    "Batch",
    "Capabilities",
    "Column",
    "ColumnType",
    "Compactable",
    "DeleteUnseen",
    "DeleteWhere",
    "DestinationBusyError",
    "DestinationLockedError",
    "DestinationURLError",
    "DestinationUnavailableError",
    "FromJson",
    "PageInfo",
    "PageLoader",
    "PageRows",
    "PageShapeError",
    "SchemaError",
    "StateUpdate",
    "StreamLocker",
    "Table",
    "Upsert",
    "Warehouse",
    "WarehouseError",
    "compact_warehouse",
    "duckdb_path",
    "open_warehouse",
    "purge_profiles",
    "table",
]


_DUCKDB = "duckdb:///"


def duckdb_path(url: str) -> str | None:
    """The file a DuckDB destination names, or None when ``url`` is not DuckDB's.

    As in SQLAlchemy's SQLite URLs, what follows ``duckdb:///`` is the path:
    ``duckdb:///kbridge.duckdb`` is relative to the working directory,
    ``duckdb:////srv/kb.duckdb`` absolute, ``duckdb:///:memory:`` in memory.
    A bare path ending in ``.duckdb`` or ``.db`` is taken as it is; a ``?query`` of
    settings (see :func:`open_warehouse`) is not part of the path.
    """
    url = url.partition("?")[0]
    if url.startswith("duckdb:"):
        path = url.removeprefix(_DUCKDB) if url.startswith(_DUCKDB) else ""
        if not path:
            raise DestinationURLError(
                f"{url!r} names no file: use duckdb:///relative/file.duckdb, "
                "duckdb:////absolute/file.duckdb or duckdb:///:memory:"
            )
        return path
    if url.endswith((".duckdb", ".db")) and "://" not in url:
        return url
    return None


def open_warehouse(
    url: str, *, memory_limit: str | None = None, threads: int | None = None
) -> Warehouse:
    """A warehouse from a destination URL: ``postgresql://…`` / ``postgres://…``, or a
    DuckDB file as :func:`duckdb_path` reads it (``duckdb:///kbridge.duckdb``).

    DuckDB only: ``memory_limit`` and ``threads`` are defaults for the connection's
    settings (see :class:`~kbridge.warehouse.duckdb.DuckDBWarehouse`); the URL's own
    ``?memory_limit=256MB&threads=2`` wins over them. A default ``memory_limit`` is not
    applied to ``:memory:`` (it would cap the database's size).
    """
    if url.startswith(("postgresql://", "postgres://")):
        from kbridge.warehouse.postgres import PostgresWarehouse

        return PostgresWarehouse(url)
    url, _, query = url.partition("?")
    path = duckdb_path(url)
    if path is None:
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
