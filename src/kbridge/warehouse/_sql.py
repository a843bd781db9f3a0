"""SQL text shared by the dialects (identifiers quoted, values always bound)."""

# Identifiers in SQL text come from kbridge's own schema (quoted by q()); values are bound.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kbridge.warehouse.base import DeleteUnseen, DeleteWhere
from kbridge.warehouse.schema import SEEN_TABLE, Table

__all__ = ["create_table", "delete_sql", "q", "upsert_tail"]


def q(name: str) -> str:
    """A quoted identifier (names come from kbridge's schema, never from data)."""
    return '"' + name.replace('"', '""') + '"'


def create_table(table: Table, types: Mapping[str, str]) -> str:
    cols = ", ".join(
        f"{q(c.name)} {types[c.type]}{'' if c.nullable else ' NOT NULL'}" for c in table.columns
    )
    key = ", ".join(q(k) for k in table.primary_key)
    return f"CREATE TABLE IF NOT EXISTS {q(table.name)} ({cols}, PRIMARY KEY ({key}))"


def upsert_tail(table: Table) -> str:
    """``ON CONFLICT (key) DO UPDATE SET …`` (or ``DO NOTHING`` for key-only tables)."""
    key = ", ".join(q(k) for k in table.primary_key)
    rest = [c for c in table.column_names if c not in table.primary_key]
    if not rest:
        return f" ON CONFLICT ({key}) DO NOTHING"
    sets = ", ".join(f"{q(c)} = excluded.{q(c)}" for c in rest)
    return f" ON CONFLICT ({key}) DO UPDATE SET {sets}"


def delete_sql(
    op: DeleteWhere | DeleteUnseen, account_id: str, ph: str = "?"
) -> tuple[str, list[Any]]:
    """A parameterised DELETE for ``op``; ``ph`` is the dialect's placeholder."""
    params: list[Any] = [account_id]
    where = [f"{q('account_id')} = {ph}"]
    if isinstance(op, DeleteWhere):
        for col, value in op.equals.items():
            where.append(f"{q(col)} = {ph}")
            params.append(value)
        for col, value in op.not_equals.items():
            where.append(f"({q(col)} IS NULL OR {q(col)} <> {ph})")
            params.append(value)
    else:
        seen = q(SEEN_TABLE.name)
        where.append(
            f"{q(op.column)} NOT IN (SELECT {q('id')} FROM {seen} WHERE {q('account_id')} = {ph}"
            f" AND {q('scope')} = {ph} AND {q('run')} = {ph})"
        )
        params += [account_id, op.scope, op.run]
    return f"DELETE FROM {q(op.table.name)} WHERE " + " AND ".join(where), params
