"""The storage protocol every dialect implements, and the unit of work it commits.

A :class:`Batch` is everything one checkpoint changes: upserted rows,
deletions and the bookmarks that cover them. A dialect applies a batch in
**one transaction**, so a crash leaves either all of it or none of it — the
property the sync's exactly-once guarantee rests on.

Methods are blocking (database drivers are); the sync engine calls them from
a worker thread, one batch at a time per warehouse.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from kbridge.warehouse.schema import Table

__all__ = [
    "Batch",
    "Capabilities",
    "DeleteUnseen",
    "DeleteWhere",
    "FromJson",
    "PageInfo",
    "PageLoader",
    "PageRows",
    "StateUpdate",
    "StreamLocker",
    "Upsert",
    "Warehouse",
    "dedupe_rows",
]

Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a dialect can do, so callers choose strategies without checking its type."""

    dialect: str
    bulk_load: str  # "unnest" (DuckDB list parameters) or "copy" (PostgreSQL COPY)
    concurrent_writers: bool  # can several connections write at once
    json_type: str
    #: reads JSON:API page bodies into rows itself (:class:`PageLoader`)
    page_rows: bool = False


@dataclass(frozen=True, slots=True)
class Upsert:
    """Insert ``rows`` (tuples in ``table`` column order), replacing rows with the same key."""

    table: Table
    rows: Sequence[Row]


@dataclass(frozen=True, slots=True)
class DeleteWhere:
    """``DELETE FROM table WHERE account_id = … AND equals… AND not_equals…``."""

    table: Table
    equals: Mapping[str, Any] = field(default_factory=dict)
    not_equals: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeleteUnseen:
    """Delete rows of ``table`` whose ``column`` was not recorded in the seen table for
    ``(scope, run)`` — how a reconcile scan removes what Klaviyo deleted."""

    table: Table
    column: str
    scope: str
    run: str


@dataclass(frozen=True, slots=True)
class StateUpdate:
    """Set (or with ``value=None`` clear) the bookmark of ``(stream, partition)``."""

    stream: str
    partition: str
    value: Mapping[str, Any] | None


@dataclass(slots=True)
class Batch:
    """One checkpoint for one account, applied atomically in list order."""

    account_id: str
    operations: list[Upsert | DeleteWhere | DeleteUnseen] = field(default_factory=list)
    state: list[StateUpdate] = field(default_factory=list)

    def upsert(self, table: Table, rows: Sequence[Row]) -> Batch:
        if rows:
            self.operations.append(Upsert(table, rows))
        return self

    def delete(self, op: DeleteWhere | DeleteUnseen) -> Batch:
        self.operations.append(op)
        return self

    def set_state(self, stream: str, partition: str, value: Mapping[str, Any] | None) -> Batch:
        self.state.append(StateUpdate(stream, partition, value))
        return self


@dataclass(frozen=True, slots=True)
class FromJson:
    """Where a column's value sits in each record of a JSON:API page's ``data``.

    ``path`` names object members from the record down (``("attributes", "datetime")``,
    ``("relationships", "metric", "data", "id")``). A ``json`` column keeps the value as
    JSON text (``null`` and absent are SQL NULL, or ``default`` when given); other
    columns convert it to the column's type.

    ``without`` (``json`` columns) leaves those members out of the object: the
    attributes other columns hold, so a column of the attributes no other column
    holds (``{}`` in the usual case) keeps whatever the API adds, and nothing twice.
    """

    path: tuple[str, ...]
    default: str | None = None
    without: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class PageRows:
    """One page body whose ``data`` records become ``table`` rows inside the database.

    ``columns`` maps every column but ``account_id`` to where its value sits;
    ``cursor`` is the path of the timestamp whose latest instant :class:`PageInfo`
    reports (the bookmark the page justifies). ``cursor_sorted`` says the records
    come in ascending cursor order (the API was asked to sort by it), so the last
    record holds the latest and the others need not be read for it.
    """

    table: Table
    body: bytes
    columns: Mapping[str, FromJson]
    cursor: tuple[str, ...] | None = None
    cursor_sorted: bool = False


@dataclass(frozen=True, slots=True)
class PageInfo:
    """What a page leads to: its ``links.next`` and its latest cursor."""

    next_url: str | None
    latest: datetime | None


class PageLoader(Protocol):
    """A dialect that turns page bodies into rows itself (``capabilities.page_rows``):
    no Python object per record, which is most of a sync's CPU on wide pages."""

    def page_info(self, page: PageRows) -> PageInfo:
        """The page's ``links.next`` and latest cursor (writes nothing). Raises
        :class:`~kbridge.warehouse.errors.PageShapeError` for a body it cannot read."""
        ...

    def load_pages(
        self, account_id: str, pages: Sequence[PageRows], state: Sequence[StateUpdate]
    ) -> int:
        """Upsert the pages' rows and ``state`` in one transaction; the rows they held.
        Raises :class:`~kbridge.warehouse.errors.PageShapeError`, having written nothing,
        for a body it cannot read as rows."""
        ...


@runtime_checkable
class StreamLocker(Protocol):
    """A dialect where several processes can write at once, so runs must claim what they
    write: a run holds each ``(account, stream)`` it syncs until it ends, and a second run
    wanting any of them is refused (a membership sweep deletes rows other runs wrote)."""

    def lock_streams(self, account_id: str, streams: Sequence[str]) -> Callable[[], None]:
        """Hold every stream of ``account_id`` in ``streams``; returns the function that
        lets them go. Held until then, or until the process dies. Raises
        :class:`~kbridge.warehouse.errors.DestinationBusyError` naming the streams another
        run holds, holding none."""
        ...


class Warehouse(Protocol):
    """A destination database. Implementations: DuckDB and PostgreSQL."""

    @property
    def capabilities(self) -> Capabilities: ...

    def migrate(self, tables: Sequence[Table]) -> None:
        """Create missing tables and add missing columns (never drops anything)."""
        ...

    def commit(self, batch: Batch) -> None:
        """Apply ``batch`` in one transaction."""
        ...

    def load_state(self, account_id: str, stream: str) -> dict[str, dict[str, Any]]:
        """Every partition's bookmark of ``stream`` for ``account_id``."""
        ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run a read query (``?`` placeholders in either dialect) and return all rows."""
        ...

    def close(self) -> None: ...


def dedupe_rows(table: Table, rows: Sequence[Row]) -> Sequence[Row]:
    """Keep the last row per primary key: one statement may not update a row twice."""
    positions = table.key_positions()
    last: dict[tuple[Any, ...], Row] = {}
    for row in rows:
        last[tuple(row[i] for i in positions)] = row
    return rows if len(last) == len(rows) else list(last.values())
