"""The rows a push sends: a query, a table or a file, read through the warehouse.

The source is materialised once into a temporary table, so that its columns are
known and checked (a missing column, empty identities) before any request is made,
and then read back in slices of ``rowid`` — never the whole result in memory.
DuckDB reads CSV, Parquet and JSON Lines files itself. In PostgreSQL (``--query`` and
``--table`` only) the temporary table numbers its rows in a column of its own.
"""

# ruff: noqa: S608  (the user's own SQL is the point; names are quoted, paths are literals)

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kbridge.push._engine import PushInputError
from kbridge.warehouse import Warehouse, WarehouseError

__all__ = ["TEMP", "Source", "quote_ident", "quote_literal", "read_source"]

_TEMP = "_kbridge_push_source"
#: PostgreSQL has no rowid: the temporary table numbers its rows in this column
_ROWNUM = "_kbridge_push_row"
_READERS = {
    ".csv": "read_csv_auto",
    ".parquet": "read_parquet",
    ".jsonl": "read_json_auto",
    ".ndjson": "read_json_auto",
    ".json": "read_json_auto",
}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


#: for the SQL path (``_sqlpath``): the materialised source and how to quote into it
TEMP = _TEMP
quote_ident = _quote
quote_literal = _literal


@dataclass(frozen=True, slots=True)
class Source:
    """A materialised source: its columns, its size and its rows as mappings."""

    warehouse: Warehouse
    columns: tuple[str, ...]
    count: int
    slice_rows: int = 20_000
    #: each column's type as the warehouse names it (DuckDB's; empty elsewhere)
    types: tuple[str, ...] = ()

    def empty_values(self, column: str) -> int:
        """How many rows have no value (NULL or blank) in ``column``."""
        rows = self.warehouse.query(
            f"SELECT count(*) FROM {_TEMP} WHERE "
            f"{_quote(column)} IS NULL OR trim(CAST({_quote(column)} AS VARCHAR)) = ''"
        )
        return int(rows[0][0])

    def check(self, id_column: str, properties: Sequence[str] | None) -> None:
        """Every named column exists and no identity is empty, or one clear error."""
        wanted = [id_column, *(properties or ())]
        missing = [c for c in wanted if c not in self.columns]
        if missing:
            raise PushInputError(
                f"no column {', '.join(map(repr, missing))} in the source "
                f"(it has: {', '.join(self.columns)})"
            )
        empty = self.empty_values(id_column)
        if empty:
            raise PushInputError(
                f"{empty} of {self.count} rows have no {id_column}; "
                "filter them out or choose another --id-column"
            )

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        cols = self.columns
        if self.warehouse.capabilities.dialect == "duckdb":
            sql = f"SELECT * FROM {_TEMP} WHERE rowid >= ? AND rowid < ? ORDER BY rowid"
        else:
            listed = ", ".join(_quote(c) for c in cols)
            sql = (
                f"SELECT {listed} FROM {_TEMP} WHERE {_ROWNUM} >= ? AND {_ROWNUM} < ? "
                f"ORDER BY {_ROWNUM}"
            )
        for start in range(0, self.count, self.slice_rows):
            for row in self.warehouse.query(sql, [start, start + self.slice_rows]):
                yield dict(zip(cols, row, strict=True))


def read_source(
    warehouse: Warehouse,
    *,
    query: str | None = None,
    table: str | None = None,
    file: str | Path | None = None,
) -> Source:
    """Exactly one of ``query`` (SQL), ``table`` or ``file`` (.csv, .parquet, .jsonl), as a
    :class:`Source` over ``warehouse`` (DuckDB). Raises :class:`PushInputError` with one
    line for a source that cannot be read."""
    given = [x for x in (query, table, file) if x is not None]
    if len(given) != 1:
        raise PushInputError("give exactly one of --query, --table or --file")
    dialect = warehouse.capabilities.dialect
    if dialect not in ("duckdb", "postgresql"):
        raise PushInputError("push reads its rows through DuckDB or PostgreSQL")
    if file is not None and dialect != "duckdb":
        raise PushInputError(
            "--file is read through DuckDB: use --from duckdb:///FILE, or load the file "
            "into PostgreSQL and give --table"
        )
    if query is not None:
        select = query.strip().rstrip(";")
        what = "the query"
    elif table is not None:
        select = f"SELECT * FROM {'.'.join(_quote(p) for p in table.split('.'))}"
        what = f"table {table!r}"
    else:
        path = Path(str(file))
        reader = _READERS.get(path.suffix.lower())
        if reader is None:
            raise PushInputError(f"{path.name}: give a .csv, .parquet or .jsonl file")
        if not path.is_file():
            raise PushInputError(f"{path}: no such file")
        select = f"SELECT * FROM {reader}({_literal(str(path))})"
        what = str(path)
    try:
        if dialect == "duckdb":
            warehouse.query(f"CREATE OR REPLACE TEMP TABLE {_TEMP} AS {select}")
            described = warehouse.query(f"DESCRIBE {_TEMP}")
            columns = tuple(str(r[0]) for r in described)
            types = tuple(str(r[1]) for r in described)
        else:
            types = ()
            warehouse.query(f"DROP TABLE IF EXISTS pg_temp.{_TEMP}")
            warehouse.query(
                f"CREATE TEMP TABLE {_TEMP} AS SELECT "
                f"row_number() OVER () - 1 AS {_ROWNUM}, s.* FROM ({select}) s"
            )
            columns = tuple(
                str(r[0])
                for r in warehouse.query(
                    "SELECT attname FROM pg_attribute WHERE attrelid = ?::regclass "
                    "AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                    [f"pg_temp.{_TEMP}"],
                )
                if r[0] != _ROWNUM
            )
        count = int(warehouse.query(f"SELECT count(*) FROM {_TEMP}")[0][0])
    except WarehouseError as exc:
        detail = str(exc).split("failed: ", 1)[-1].splitlines()[0]
        raise PushInputError(f"cannot read {what}: {detail}") from None
    return Source(warehouse, columns, count, types=types)
