"""Removing a person from the warehouse at once (privacy deletions).

When kbridge deletes a profile in Klaviyo for a privacy request, the copy in
the warehouse must go too, without waiting for the next ``--reconcile``:
the profile row, its list and segment memberships and its events, in one
transaction. Tables that were never synced are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable

from kbridge.warehouse.base import Batch, DeleteWhere, Warehouse
from kbridge.warehouse.schema import Column, Table

__all__ = ["PROFILE_REFERENCES", "purge_profiles"]

#: (table, column holding a profile id) for every synced table that names a person
PROFILE_REFERENCES: tuple[tuple[str, str], ...] = (
    ("profiles", "id"),
    ("list_memberships", "profile_id"),
    ("segment_memberships", "profile_id"),
    ("events", "profile_id"),
)


def _existing_tables(warehouse: Warehouse) -> set[str]:
    rows = warehouse.query("SELECT table_name FROM information_schema.tables")
    return {str(r[0]) for r in rows}


def purge_profiles(warehouse: Warehouse, account_id: str, profile_ids: Iterable[str]) -> int:
    """Delete every row about ``profile_ids`` of ``account_id``; returns how many ids."""
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
    return len(ids)
