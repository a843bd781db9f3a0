"""PostgreSQL through psycopg 3: rows are ``COPY``-ed into a temporary staging
table, then moved with one ``INSERT … ON CONFLICT DO UPDATE`` — the fastest
upsert PostgreSQL offers, and still one transaction per batch.

Several processes may write one database, so what must not overlap is guarded by
advisory locks: schema changes by a transaction-scoped one (``CREATE TABLE IF NOT
EXISTS`` is not safe against a concurrent creator), and each sync run's
``(account, stream)`` pairs by session-scoped ones held on a connection of their own
(released when the run ends or its process dies).
"""

# Identifiers in SQL text come from kbridge's own schema (quoted by q()); values are bound.
# ruff: noqa: S608

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from kbridge.core.jsoncodec import dumps_str
from kbridge.warehouse._sql import create_table, delete_sql, q, upsert_tail
from kbridge.warehouse.base import Batch, Capabilities, Row, Upsert, dedupe_rows
from kbridge.warehouse.errors import (
    DestinationBusyError,
    DestinationUnavailableError,
    SchemaError,
    WarehouseError,
)
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


def _advisory_key(*parts: str) -> int:
    """A signed 64-bit advisory lock key for ``parts`` (kbridge's own namespace)."""
    digest = hashlib.blake2b("\0".join(("kbridge", *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


#: held by every schema change in the database, whichever process makes it
_DDL_KEY = _advisory_key("schema")
#: tries of a schema change that lost a race to a creator not taking the DDL lock
_MIGRATE_TRIES = 3


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
        self._url = url  # for the lock connection; never shown (the repr is the safe URL)
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
        with self._lock:
            for attempt in range(_MIGRATE_TRIES):
                try:
                    self._migrate(tables)
                    return
                except (
                    psycopg.errors.UniqueViolation,
                    psycopg.errors.DuplicateTable,
                    psycopg.errors.DuplicateObject,
                ):
                    # another creator that does not take the DDL lock (an older kbridge)
                    # committed the same table first: it exists now, so look again
                    if attempt == _MIGRATE_TRIES - 1:
                        raise SchemaError(
                            "PostgreSQL: another process kept creating the same tables; run again"
                        ) from None
                except psycopg.Error as exc:
                    raise SchemaError(
                        f"PostgreSQL refused a schema change: {str(exc).strip()}"
                    ) from exc

    def _migrate(self, tables: Sequence[Table]) -> None:
        with self._con.transaction(), self._con.cursor() as cur:
            # one schema change at a time in the whole database: a second process waits,
            # then finds the tables made (their catalogue rows would collide otherwise)
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [_DDL_KEY])
            for t in tables:
                cur.execute(create_table(t, _TYPES).encode())
                cur.execute(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_schema = current_schema() AND table_name = %s",
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

    def lock_streams(self, account_id: str, streams: Sequence[str]) -> Callable[[], None]:
        """See :class:`~kbridge.warehouse.base.StreamLocker`: session advisory locks on a
        connection of their own, so a killed process lets go with its connection."""
        try:
            con = psycopg.connect(self._url, autocommit=True)
        except psycopg.Error as exc:
            raise DestinationUnavailableError(
                f"cannot connect to PostgreSQL at {self._safe_url}: {str(exc).strip()}"
            ) from None
        try:
            busy = [
                name
                for name in sorted(set(streams))
                if not _try_lock(con, _advisory_key("sync", account_id, name))
            ]
        except psycopg.Error as exc:
            con.close()
            raise WarehouseError(f"PostgreSQL refused a lock: {str(exc).strip()}") from None
        if busy:
            con.close()  # lets go of the streams it did get
            raise DestinationBusyError(account_id, busy)
        return con.close

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


def _try_lock(con: psycopg.Connection[Any], key: int) -> bool:
    row = con.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()
    return bool(row and row[0])


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
