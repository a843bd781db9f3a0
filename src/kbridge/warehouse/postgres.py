"""PostgreSQL through psycopg 3: rows are ``COPY``-ed into a temporary staging
table, then moved with one ``INSERT … ON CONFLICT DO UPDATE`` — the fastest
upsert PostgreSQL offers, and still one transaction per batch.
"""

# Identifiers in SQL text come from kbridge's own schema (quoted by q()); values are bound.
# ruff: noqa: S608

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import psycopg

from kbridge.core.jsoncodec import dumps_str
from kbridge.warehouse._sql import create_table, delete_sql, q, upsert_tail
from kbridge.warehouse.base import Batch, Capabilities, Row, Upsert, dedupe_rows
from kbridge.warehouse.errors import DestinationUnavailableError, WarehouseError
from kbridge.warehouse.schema import STATE_TABLE, SYSTEM_TABLES, Table

__all__ = ["PostgresWarehouse"]

_TYPES = {
    "text": "text",
    "timestamp": "timestamptz",
    "bigint": "bigint",
    "double": "double precision",
    "boolean": "boolean",
    "json": "jsonb",
}


def _redact(url: str) -> str:
    """The URL without its password, for messages and reprs."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else f"{scheme}://{user}@{host}"


class PostgresWarehouse:
    """A PostgreSQL database at ``url`` (``postgresql://user:pw@host:port/db``)."""

    def __init__(self, url: str) -> None:
        self._safe_url = _redact(url)
        try:
            self._con = psycopg.connect(url, autocommit=False)
            with self._con.transaction():
                self._con.execute("SET TIME ZONE 'UTC'")  # timestamps read back in UTC
        except psycopg.Error as exc:
            raise DestinationUnavailableError(
                f"cannot connect to PostgreSQL at {self._safe_url}: {str(exc).strip()}"
            ) from None
        self._lock = threading.Lock()
        self.migrate(SYSTEM_TABLES)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities("postgresql", "copy", concurrent_writers=True, json_type="jsonb")

    def __repr__(self) -> str:
        return f"PostgresWarehouse({self._safe_url!r})"

    def migrate(self, tables: Sequence[Table]) -> None:
        with self._lock, self._con.transaction(), self._con.cursor() as cur:
            for t in tables:
                cur.execute(create_table(t, _TYPES).encode())
                cur.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = %s",
                    [t.name],
                )
                have = {r[0] for r in cur.fetchall()}
                for c in t.columns:
                    if c.name not in have:
                        alter = f"ALTER TABLE {q(t.name)} ADD COLUMN {q(c.name)} {_TYPES[c.type]}"
                        cur.execute(alter.encode())
                for name in t.retired:
                    if name in have:
                        cur.execute(f"ALTER TABLE {q(t.name)} DROP COLUMN {q(name)}".encode())

    def commit(self, batch: Batch) -> None:
        with self._lock:
            try:
                with self._con.transaction(), self._con.cursor() as cur:
                    for op in batch.operations:
                        if isinstance(op, Upsert):
                            _upsert(cur, op.table, op.rows)
                        else:
                            sql, params = delete_sql(op, batch.account_id, "%s")
                            cur.execute(sql.encode(), params)
                    _write_state(cur, batch)
            except psycopg.Error as exc:
                raise WarehouseError(f"PostgreSQL refused a batch: {str(exc).strip()}") from exc

    def load_state(self, account_id: str, stream: str) -> dict[str, dict[str, Any]]:
        rows = self.query(
            f"SELECT partition, value FROM {q(STATE_TABLE.name)}"
            " WHERE account_id = ? AND stream = ?",
            [account_id, stream],
        )
        return {str(p): dict(v) for p, v in rows}

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._lock:
            try:
                with self._con.transaction(), self._con.cursor() as cur:
                    cur.execute(sql.replace("?", "%s").encode(), list(params))
                    return [tuple(r) for r in cur.fetchall()] if cur.description else []
            except psycopg.Error as exc:
                raise WarehouseError(f"PostgreSQL query failed: {str(exc).strip()}") from exc

    def close(self) -> None:
        with self._lock:
            self._con.close()


def _upsert(cur: psycopg.Cursor[Any], table: Table, rows: Sequence[Row]) -> None:
    rows = dedupe_rows(table, rows)
    stage = q("_kbridge_stage_" + table.name)
    cols = ", ".join(q(c) for c in table.column_names)
    create = f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {q(table.name)})"
    cur.execute(create.encode())
    with cur.copy(f"COPY {stage} ({cols}) FROM STDIN".encode()) as copy:
        for row in rows:
            copy.write_row(row)
    cur.execute(
        (
            f"INSERT INTO {q(table.name)} ({cols}) SELECT {cols} FROM {stage}" + upsert_tail(table)
        ).encode()
    )
    cur.execute(f"TRUNCATE {stage}".encode())


def _write_state(cur: psycopg.Cursor[Any], batch: Batch) -> None:
    upsert = (
        f"INSERT INTO {q(STATE_TABLE.name)} VALUES (%s, %s, %s, %s::jsonb, now())"
        + upsert_tail(STATE_TABLE)
    ).encode()
    for update in batch.state:
        key = [batch.account_id, update.stream, update.partition]
        if update.value is None:
            cur.execute(
                f"DELETE FROM {q(STATE_TABLE.name)} WHERE account_id = %s AND stream = %s"
                " AND partition = %s".encode(),
                key,
            )
        else:
            cur.execute(upsert, [*key, dumps_str(dict(update.value))])
