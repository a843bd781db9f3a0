"""Removing a person from the warehouse at once (privacy deletions).

When kbridge deletes a profile in Klaviyo for a privacy request, the copy in
the warehouse must go too, without waiting for the next ``--reconcile``:
the profile row, its list and segment memberships and its events, in one
transaction. Tables that were never synced are skipped.

Deleted is not gone: DuckDB keeps the bytes of deleted rows in its file until
the blocks are reused, so a warehouse that can (:class:`Compactable`) is then
rewritten without them (:func:`compact_warehouse`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from kbridge.warehouse.base import Batch, DeleteWhere, Warehouse
from kbridge.warehouse.schema import Column, Table

__all__ = ["PROFILE_REFERENCES", "Compactable", "compact_warehouse", "purge_profiles"]

#: (table, column holding a profile id) for every synced table that names a person
PROFILE_REFERENCES: tuple[tuple[str, str], ...] = (
    ("profiles", "id"),
    ("list_memberships", "profile_id"),
    ("segment_memberships", "profile_id"),
    ("events", "profile_id"),
)


@runtime_checkable
class Compactable(Protocol):
    """A warehouse whose storage can be rewritten without the rows deleted from it."""

    def compact(self) -> None:
        """Leave no bytes of deleted rows in storage."""
        ...


def compact_warehouse(warehouse: Warehouse) -> bool:
    """Rewrite ``warehouse`` without its deleted rows if it is :class:`Compactable`
    (DuckDB); whether it was. PostgreSQL reclaims dead rows by its own (auto)vacuum."""
    if isinstance(warehouse, Compactable):
        warehouse.compact()
        return True
    return False


def _existing_tables(warehouse: Warehouse) -> set[str]:
    rows = warehouse.query("SELECT table_name FROM information_schema.tables")
    return {str(r[0]) for r in rows}


def purge_profiles(
    warehouse: Warehouse, account_id: str, profile_ids: Iterable[str], *, compact: bool = True
) -> int:
    """Delete every row about ``profile_ids`` of ``account_id``; returns how many ids.

    With ``compact`` the warehouse is then rewritten without them
    (:func:`compact_warehouse`); a batch purging many people passes ``False`` and
    compacts once at its end.
    """
    ids = sorted(set(profile_ids))
    if not ids:
        return 0
    present = _existing_tables(warehouse)
    batch = Batch(account_id)
    for name, column in PROFILE_REFERENCES:
        if name not in present:
            continue
        # DeleteWhere needs only the table's name and the filtered column
        shape = Table(name, (Column("account_id"), Column(column)), ("account_id", column))
        for pid in ids:
            batch.delete(DeleteWhere(shape, equals={column: pid}))
    warehouse.commit(batch)
    if compact:
        compact_warehouse(warehouse)
    return len(ids)
