"""DuckDB: the default destination, one embedded file, zero set-up.

Rows are loaded column-wise: each column travels as one list parameter and
``unnest`` turns the lists back into rows inside DuckDB, so a 1,000-row page
is one statement instead of 1,000 (``executemany`` costs ~50× more per row).
A batch is first tried as a plain ``INSERT``: DuckDB's ``ON CONFLICT`` machinery
costs more than the insert itself (≈ 5 µs an event row, 17 µs a profile row,
even when no key exists), and a first sync meets no existing key. If a key
exists the transaction is rolled back whole and the batch upserted instead.
A text column without nulls travels as one string joined by a separator that
JSON text cannot hold unescaped and ``string_split`` cuts it apart again: binding
a list costs DuckDB a conversion per element, about twice the split's cost.

Pages can also skip Python altogether (:meth:`DuckDBWarehouse.load_page`): the
body goes in as one string and ``from_json`` reads each column out of it. An
events page decoded by orjson is ~10,000 Python objects, built only to be taken
apart again; DuckDB's parser makes none, so a row costs a third of the CPU.
"""

# Identifiers in SQL text come from kbridge's own schema (quoted by q()); values are bound.
# ruff: noqa: S608

from __future__ import annotations

import contextlib
import os
import re
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from kbridge.core.jsoncodec import dumps_str, loads
from kbridge.warehouse._duckdb_files import _create_private, _fsync, _hold_file, _release_file
from kbridge.warehouse._duckdb_sql import (
    _LIST,
    _insert_sql,
    _joined,
    _members_sql,
    _page_sql,
    _statements,
    _text,
)
from kbridge.warehouse._sql import create_table, delete_sql, q, upsert_tail
from kbridge.warehouse.base import (
    Batch,
    Capabilities,
    PageInfo,
    PageRows,
    Row,
    StateUpdate,
    Upsert,
    dedupe_rows,
)
from kbridge.warehouse.errors import (
    DestinationLockedError,
    DestinationUnavailableError,
    PageShapeError,
    WarehouseError,
)
from kbridge.warehouse.schema import STATE_TABLE, SYSTEM_TABLES, Table

__all__ = ["DuckDBWarehouse"]

_TYPES = {
    "text": "VARCHAR",
    "timestamp": "TIMESTAMPTZ",
    "bigint": "BIGINT",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
    "json": "JSON",
}


#: rows a row group of a table holds: about one sync commit (IN_DATABASE_ROWS, 20,000 rows;
#: a multiple of DuckDB's 2,048-row vectors). Loading 200k profiles in 20,000-row commits
#: cost 27.9 µs a row with it, 38.7 with DuckDB's default of 122,880, whose checkpoints
#: rewrote the growing last group (a throwaway script, same pages).
ROW_GROUP_SIZE = 20_480
_CATALOG = "kbridge"
#: DuckDB's word for a file another process has open for writing (it allows one writer)
_CONFLICTING_LOCK = re.compile(r"Conflicting lock is held in .*?\((PID \d+)\)")


class DuckDBWarehouse:
    """A DuckDB database file (or ``:memory:``). Thread-safe: one lock serialises use.

    ``memory_limit`` (e.g. ``"256MB"``) caps DuckDB's buffer pool; its default (80 % of
    RAM) lets the pool keep every page of a growing table, so a process's memory grows
    with the account. A file database evicts to its file; a ``:memory:`` database has
    nowhere to evict to, so a limit there caps its size. ``threads`` bounds DuckDB's
    worker threads (one page's upsert gains little from parallelism). ``None`` keeps
    DuckDB's default.

    The file is attached with row groups of :data:`ROW_GROUP_SIZE` rows, the size of
    one sync commit: with DuckDB's default (122,880) every checkpoint rewrote the
    partly filled last group, up to six commits' worth of rows again.
    """

    def __init__(
        self, path: str, *, memory_limit: str | None = None, threads: int | None = None
    ) -> None:
        self._path = path
        config: dict[str, str | bool | int | float | list[str]] = {}
        if memory_limit is not None:
            config["memory_limit"] = memory_limit
        if threads is not None:
            config["threads"] = threads
        try:
            self._held = _hold_file(path)
        except BlockingIOError:
            raise DestinationLockedError(path) from None
        except OSError as exc:
            raise DestinationUnavailableError(
                f"cannot open DuckDB file {path!r}: {exc.strerror or exc}"
            ) from None
        try:
            _create_private(path)
            self._con = duckdb.connect(":memory:", config=config)
            # the file as the default catalogue, so every statement names its tables alone
            self._attach(path, _CATALOG)
            self._con.execute(f"USE {_CATALOG}")
            self._con.execute("SET TimeZone = 'UTC'")
        except duckdb.Error as exc:
            _release_file(self._held)
            held = _CONFLICTING_LOCK.search(str(exc))
            if held is not None:
                # not ours: a plain DuckDB client (or an older kbridge) has the file
                raise DestinationLockedError(path, held.group(1)) from None
            raise DestinationUnavailableError(f"cannot open DuckDB file {path!r}: {exc}") from exc
        self._lock = threading.Lock()
        self._insert_sql: dict[tuple[Table, tuple[bool, ...], bool], str] = {}
        #: tables whose recent batches met existing keys: upserted for this many more batches
        self._upserting: dict[Table, int] = {}
        self._page_sqls: dict[tuple[Any, ...], tuple[str, str]] = {}
        self.migrate(SYSTEM_TABLES)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            "duckdb", "unnest", concurrent_writers=False, json_type="JSON", page_rows=True
        )

    def __repr__(self) -> str:
        return f"DuckDBWarehouse({self._path!r})"

    def migrate(self, tables: Sequence[Table]) -> None:
        with self._lock:
            for t in tables:
                self._con.execute(create_table(t, _TYPES))
                have = {
                    r[0]
                    for r in self._con.execute(
                        "SELECT column_name FROM information_schema.columns WHERE table_name = ?",
                        [t.name],
                    ).fetchall()
                }
                for c in t.columns:
                    if c.name not in have:
                        self._con.execute(
                            f"ALTER TABLE {q(t.name)} ADD COLUMN {q(c.name)} {_TYPES[c.type]}"
                        )
                for name in t.retired:
                    if name in have:
                        self._con.execute(f"ALTER TABLE {q(t.name)} DROP COLUMN {q(name)}")

    def commit(self, batch: Batch) -> None:
        with self._lock:
            try:
                self._commit(batch)
            except duckdb.Error as exc:
                raise WarehouseError(f"DuckDB refused a batch: {exc}") from exc

    def _private_wal(self) -> None:
        """Make the write-ahead log 0600: DuckDB creates it under the umask, rows and all.

        It comes and goes with checkpoints, so it is checked after every write (a stat).
        """
        if self._path == ":memory:":
            return
        wal = f"{self._path}.wal"
        with contextlib.suppress(OSError):  # gone with a checkpoint, or not ours to narrow
            if os.stat(wal).st_mode & 0o077:
                os.chmod(wal, 0o600)

    def _commit(self, batch: Batch) -> None:
        tables = {op.table for op in batch.operations if isinstance(op, Upsert)}
        if tables and not any(self._upserting.get(t, 0) for t in tables):
            try:
                self._apply(batch, insert_only=True)
                return
            except duckdb.ConstraintException:
                # a key already existed: the batch was rolled back whole; upsert it now,
                # and the next batches of these tables too
                for t in tables:
                    self._upserting[t] = _UPSERT_BATCHES
        for t in tables:
            self._upserting[t] = max(0, self._upserting.get(t, 0) - 1)
        self._apply(batch, insert_only=False)

    def _apply(self, batch: Batch, *, insert_only: bool) -> None:
        """``batch`` in one transaction (rolled back whole if anything fails)."""
        con = self._con
        con.execute("BEGIN TRANSACTION")
        try:
            for op in batch.operations:
                if isinstance(op, Upsert):
                    self._upsert(op.table, op.rows, insert_only=insert_only)
                else:
                    sql, params = delete_sql(op, batch.account_id)
                    con.execute(sql, params)
            self._write_state(batch)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        self._private_wal()

    def _upsert(self, table: Table, rows: Sequence[Row], *, insert_only: bool) -> None:
        rows = dedupe_rows(table, rows)
        params: list[Any] = []
        joined: list[bool] = []
        for c, col in zip(table.columns, zip(*rows, strict=True), strict=True):
            text = _joined(col) if _LIST[c.type][0] == "VARCHAR[]" else None
            joined.append(text is not None)
            params.append(text if text is not None else list(col))
        key = (table, tuple(joined), insert_only)
        sql = self._insert_sql.get(key)
        if sql is None:
            sql = self._insert_sql[key] = _insert_sql(table, key[1], upsert=not insert_only)
        self._con.execute(sql, params)

    def page_info(self, page: PageRows) -> PageInfo:
        """What the page holds (see :class:`~kbridge.warehouse.PageLoader`)."""
        text = _text(page)
        with self._lock:
            try:
                found = self._con.execute(self._page_sql(page, upsert=False)[0], [text]).fetchone()
            except (duckdb.ConversionException, duckdb.InvalidInputException) as exc:
                raise PageShapeError(f"DuckDB cannot read the page: {exc}") from exc
            except duckdb.Error as exc:
                raise WarehouseError(f"DuckDB refused a page: {exc}") from exc
        assert found is not None
        return PageInfo(found[0], found[1])

    def load_pages(
        self, account_id: str, pages: Sequence[PageRows], state: Sequence[StateUpdate]
    ) -> int:
        """The pages' rows, read out of their bodies by DuckDB, and ``state``, in one
        transaction (see :class:`~kbridge.warehouse.PageLoader`)."""
        tables = {p.table for p in pages}
        with self._lock:
            try:
                if not any(self._upserting.get(t, 0) for t in tables):
                    try:
                        return self._load_pages(account_id, pages, state, upsert=False)
                    except duckdb.ConstraintException:
                        # a key already existed (or came twice): upsert, as _commit does
                        for t in tables:
                            self._upserting[t] = _UPSERT_BATCHES
                for t in tables:
                    self._upserting[t] = max(0, self._upserting.get(t, 0) - 1)
                return self._load_pages(account_id, pages, state, upsert=True)
            except (duckdb.ConversionException, duckdb.InvalidInputException) as exc:
                raise PageShapeError(f"DuckDB cannot read the pages as rows: {exc}") from exc
            except duckdb.Error as exc:
                raise WarehouseError(f"DuckDB refused a page: {exc}") from exc

    def _load_pages(
        self,
        account_id: str,
        pages: Sequence[PageRows],
        state: Sequence[StateUpdate],
        *,
        upsert: bool,
    ) -> int:
        con = self._con
        written = 0
        con.execute("BEGIN TRANSACTION")
        try:
            for group in _statements(pages, upsert=upsert):
                # decoded a statement at a time: a commit holds ~20 MB of bodies, not twice that
                texts = [_text(page) for page in group]
                others = self._others(group[0], texts)
                insert = self._page_sql(group[0], upsert=upsert, others=others)[1]
                found = con.execute(insert, [account_id, texts])
                inserted = found.fetchone()
                written += int(inserted[0]) if inserted else 0
            self._write_state(Batch(account_id, state=list(state)))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        self._private_wal()
        return written

    def _page_sql(self, page: PageRows, *, upsert: bool, others: bool = True) -> tuple[str, str]:
        key = (
            page.table,
            tuple(page.columns.items()),
            page.cursor,
            page.cursor_sorted,
            upsert,
            others,
        )
        found = self._page_sqls.get(key)
        if found is None:
            found = self._page_sqls[key] = _page_sql(page, upsert=upsert, others=others)
        return found

    def _others(self, page: PageRows, texts: list[str]) -> bool:
        """Whether the bodies hold members a ``without`` column must keep (see _page_sql)."""
        for spec in page.columns.values():
            if spec.without:
                found = self._con.execute(_members_sql(spec.path), [texts]).fetchone()
                members = found[0] if found and found[0] is not None else []
                if not set(members) <= spec.without:
                    return True
        return False

    def _write_state(self, batch: Batch) -> None:
        if not batch.state:
            return
        upsert = (
            f"INSERT INTO {q(STATE_TABLE.name)} VALUES (?, ?, ?, CAST(? AS JSON), now())"
            + upsert_tail(STATE_TABLE)
        )
        for update in batch.state:
            key = [batch.account_id, update.stream, update.partition]
            if update.value is None:
                self._con.execute(
                    f"DELETE FROM {q(STATE_TABLE.name)} WHERE account_id = ? AND stream = ?"
                    " AND partition = ?",
                    key,
                )
            else:
                self._con.execute(upsert, [*key, dumps_str(dict(update.value))])

    def load_state(self, account_id: str, stream: str) -> dict[str, dict[str, Any]]:
        rows = self.query(
            f"SELECT partition, CAST(value AS VARCHAR) FROM {q(STATE_TABLE.name)}"
            " WHERE account_id = ? AND stream = ?",
            [account_id, stream],
        )
        return {str(p): loads(v) for p, v in rows}

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._lock:
            try:
                return [tuple(r) for r in self._con.execute(sql, list(params)).fetchall()]
            except duckdb.Error as exc:
                raise WarehouseError(f"DuckDB query failed: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._con.close()
            _release_file(self._held)
            self._held = None

    def _attach(self, path: str, alias: str) -> None:
        target = path.replace("'", "''")
        self._con.execute(f"ATTACH '{target}' AS {alias} (ROW_GROUP_SIZE {ROW_GROUP_SIZE})")

    def compact(self) -> None:
        """Rewrite the database file so that deleted rows leave no bytes behind.

        DuckDB neither zeroes nor gives back the blocks of deleted rows, and a
        ``CHECKPOINT`` does not either: an erased address stayed readable in the file.
        The live rows are copied into a fresh file beside it (``COPY FROM DATABASE``
        keeps every table's key, view and sequence), which then replaces the old one
        with an atomic rename: a crash leaves either the old file or the new one. It
        needs free disk space the size of the database. ``:memory:`` has no file.
        """
        if self._path == ":memory:":
            return
        path = self._path
        fresh = f"{path}.compact"
        with self._lock:
            con = self._con
            try:
                for leftover in (fresh, fresh + ".wal"):  # an earlier attempt that died
                    Path(leftover).unlink(missing_ok=True)
                con.execute(f"CHECKPOINT {_CATALOG}")
                self._attach(fresh, _COMPACT)
                try:
                    con.execute(f"COPY FROM DATABASE {_CATALOG} TO {_COMPACT}")
                finally:
                    con.execute(f"DETACH {_COMPACT}")
            except (duckdb.Error, OSError) as exc:
                Path(fresh).unlink(missing_ok=True)
                raise WarehouseError(f"cannot rewrite DuckDB file {path!r}: {exc}") from exc
            con.execute("USE memory")
            con.execute(f"DETACH {_CATALOG}")
            try:
                if Path(path + ".wal").exists():
                    # detaching checkpoints and removes the log; one left would be replayed
                    # onto the new file
                    raise WarehouseError(f"DuckDB left a write-ahead log beside {path!r}")
                shutil.copymode(path, fresh)
                _fsync(fresh)
                Path(fresh).replace(path)
                _fsync(str(Path(path).resolve().parent))
            except OSError as exc:
                raise WarehouseError(f"cannot replace DuckDB file {path!r}: {exc}") from exc
            finally:
                Path(fresh).unlink(missing_ok=True)
                self._attach(path, _CATALOG)
                con.execute(f"USE {_CATALOG}")


#: the catalogue :meth:`DuckDBWarehouse.compact` copies into
_COMPACT = "kbridge_compact"


#: after a batch met existing keys, its tables' next batches go straight to the upsert
#: (a re-read window, e.g. the lookback, tends to run on for several batches)
_UPSERT_BATCHES = 8
