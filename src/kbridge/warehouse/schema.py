"""Tables as data: columns with portable types, primary keys, and kbridge's own tables.

Dialects map the portable types (``text``, ``timestamp``, ``bigint``,
``double``, ``boolean``, ``json``) to their own; rows travel as plain tuples
in column order, timestamps as RFC 3339 strings and JSON as serialised text,
so the hot path never builds objects per value.

Every table starts with ``account_id`` and its primary key includes it, so
many Klaviyo accounts can share one warehouse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "SEEN_TABLE",
    "STATE_TABLE",
    "SYSTEM_TABLES",
    "Column",
    "ColumnType",
    "Table",
    "table",
]

ColumnType = Literal["text", "timestamp", "bigint", "double", "boolean", "json"]


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: ColumnType = "text"
    #: False: ``NOT NULL`` in the table's DDL (not added to an existing table's column)
    nullable: bool = True


@dataclass(frozen=True, slots=True)
class Table:
    """A table: ``columns`` in row order (``account_id`` first) and its primary key."""

    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    description: str = ""
    #: columns earlier versions wrote and this one does not: ``migrate`` drops them
    #: rather than leave values that no update would keep true
    retired: tuple[str, ...] = ()
    column_names: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = tuple(c.name for c in self.columns)
        object.__setattr__(self, "column_names", names)
        if not names or names[0] != "account_id":
            raise ValueError(f"table {self.name}: the first column must be account_id")
        if len(set(names)) != len(names):
            raise ValueError(f"table {self.name}: duplicate column names")
        if set(self.retired) & set(names):
            raise ValueError(f"table {self.name}: a retired column is still a column")
        missing = [k for k in self.primary_key if k not in names]
        if missing or "account_id" not in self.primary_key:
            raise ValueError(
                f"table {self.name}: primary key {self.primary_key} must include account_id "
                f"and name existing columns (missing: {missing})"
            )

    def key_positions(self) -> tuple[int, ...]:
        return tuple(self.column_names.index(k) for k in self.primary_key)


def table(
    name: str,
    columns: Sequence[str | tuple[str, ColumnType]],
    key: Sequence[str] = ("id",),
    *,
    retired: Sequence[str] = (),
) -> Table:
    """Shorthand: ``table("lists", ["id", ("created", "timestamp")])``; account_id added first."""
    cols = [Column("account_id")]
    for spec in columns:
        cols.append(Column(spec) if isinstance(spec, str) else Column(spec[0], spec[1]))
    return Table(name, tuple(cols), ("account_id", *key), retired=tuple(retired))


#: bookmarks: one row per (account, stream, partition); value is JSON
STATE_TABLE = table(
    "_kbridge_state",
    ["stream", "partition", ("value", "json"), ("updated_at", "timestamp")],
    key=("stream", "partition"),
)

#: ids seen by a reconcile scan, so deletions are found without holding ids in memory
SEEN_TABLE = table("_kbridge_seen", ["scope", "run", "id"], key=("scope", "run", "id"))

SYSTEM_TABLES = (STATE_TABLE, SEEN_TABLE)
