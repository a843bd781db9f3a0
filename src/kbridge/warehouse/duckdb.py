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
import secrets
import shutil
import threading
from collections.abc import Iterator, Sequence
from itertools import count
from pathlib import Path
from typing import Any

import duckdb

from kbridge.core.jsoncodec import dumps_str, loads
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
from kbridge.warehouse.errors import DestinationUnavailableError, PageShapeError, WarehouseError
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
# what each column's list parameter is bound as, then how its elements are cast
_LIST = {
    "text": ("VARCHAR[]", None),
    "timestamp": ("VARCHAR[]", "TIMESTAMPTZ"),
    "bigint": ("BIGINT[]", None),
    "double": ("DOUBLE[]", None),
    "boolean": ("BOOLEAN[]", None),
    "json": ("VARCHAR[]", "JSON"),
}


#: rows a row group of a table holds: about one sync commit (IN_DATABASE_ROWS, 20,000 rows;
#: a multiple of DuckDB's 2,048-row vectors). Loading 200k profiles in 20,000-row commits
#: cost 27.9 µs a row with it, 38.7 with DuckDB's default of 122,880, whose checkpoints
#: rewrote the growing last group (a throwaway script, same pages).
ROW_GROUP_SIZE = 20_480
_CATALOG = "kbridge"


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
            _create_private(path)
            self._con = duckdb.connect(":memory:", config=config)
            # the file as the default catalogue, so every statement names its tables alone
            self._attach(path, _CATALOG)
            self._con.execute(f"USE {_CATALOG}")
            self._con.execute("SET TimeZone = 'UTC'")
        except duckdb.Error as exc:
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


def _fsync(path: str) -> None:
    """Flush a file (or a directory's entries) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: joins a text column's values; a record separator, which JSON text never holds unescaped
_SEP = "\x1e"

#: after a batch met existing keys, its tables' next batches go straight to the upsert
#: (a re-read window, e.g. the lookback, tends to run on for several batches)
_UPSERT_BATCHES = 8


def _create_private(path: str) -> None:
    """Create a new database file at ``path`` with mode 0600 (it will hold PII).

    DuckDB creates files under the umask (usually 0644) and refuses a file it did not
    write, so a database is made under a temporary name, narrowed, then linked into
    place: nobody else can open ``path`` in between, and a concurrent creator's file wins.
    """
    if path == ":memory:" or "://" in path or os.path.lexists(path):
        return
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        return  # DuckDB's own error says what is missing
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(8)}.tmp")
    try:
        duckdb.connect(tmp).close()
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        except OSError:  # no hard links here: move it (only a same-instant creator loses)
            with contextlib.suppress(OSError):
                os.rename(tmp, path)
    finally:
        for leftover in (tmp, f"{tmp}.wal"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)


def _joined(values: Sequence[Any]) -> str | None:
    """``values`` as one separated string, or None when they cannot be: a null or a
    non-string among them, or a value holding the separator itself."""
    if not all(type(v) is str for v in values):
        return None
    text = _SEP.join(values)
    return text if text.count(_SEP) == len(values) - 1 else None


def _insert_sql(table: Table, joined: Sequence[bool], *, upsert: bool) -> str:
    exprs = []
    for c, one_string in zip(table.columns, joined, strict=True):
        list_type, cast = _LIST[c.type]
        if one_string:
            expr = "unnest(string_split(CAST(? AS VARCHAR), chr(30)))"
        else:
            expr = f"unnest(CAST(? AS {list_type}))"
        exprs.append(f"CAST({expr} AS {cast})" if cast else expr)
    cols = ", ".join(q(c) for c in table.column_names)
    sql = f"INSERT INTO {q(table.name)} ({cols}) SELECT {', '.join(exprs)}"
    return sql + upsert_tail(table) if upsert else sql


#: how from_json reads each column type out of a record (then cast to the column's type)
_FROM_JSON = {
    "text": ("VARCHAR", "{}"),
    "timestamp": ("VARCHAR", "CAST({} AS TIMESTAMPTZ)"),
    # int() in Python truncates; DuckDB's DOUBLE → BIGINT cast rounds
    "bigint": ("DOUBLE", "CAST(trunc({}) AS BIGINT)"),
    "double": ("DOUBLE", "{}"),
    "boolean": ("BOOLEAN", "{}"),
    "json": ("JSON", "{}"),
}


def _text(page: PageRows) -> str:
    try:
        return page.body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PageShapeError(f"the page body is not UTF-8: {exc}") from exc


def _json_literal(value: Any) -> str:
    """A SQL string literal holding ``value`` as JSON (a from_json structure)."""
    return "'" + dumps_str(value).replace("'", "''") + "'"


def _nest(paths: Sequence[tuple[tuple[str, ...], str]]) -> dict[str, Any]:
    """``[(("a", "b"), "VARCHAR")]`` → ``{"a": {"b": "VARCHAR"}}``."""
    root: dict[str, Any] = {}
    for path, leaf in paths:
        node = root
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = leaf
    return root


def _overlaps(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def _page_sql(page: PageRows, *, upsert: bool, others: bool = True) -> tuple[str, str]:
    """The statement reading a page's ``links.next`` and latest cursor, and the one
    inserting its rows (the first takes the body as its text parameter, the second a
    list of bodies).

    One from_json structure reads every column out of the body. A ``json`` column
    whose path holds other columns' paths (``attributes`` kept whole beside
    ``attributes.datetime``) is read as JSON text, and those columns out of that text
    (a few hundred bytes a record) rather than by parsing the whole body again; the
    same holds inside it (``subscriptions`` beside ``subscriptions.email…consent``).

    A column ``without`` members (the attributes no other column holds) is that JSON
    with those members patched away; ``others=False`` says the bodies hold no other
    members (:func:`_members_sql` found none), so the column is its default and its
    object is never read whole.
    """
    table = page.table
    skip = {n for n, spec in page.columns.items() if spec.without and not others}
    items = [
        (c.name, page.columns[c.name].path, c.type)
        for c in table.columns
        if c.name != "account_id" and c.name not in skip
    ]
    struct, values, layers = _read_plan(items, "r", count())
    exprs = ["?"]
    for col in table.columns:
        if col.name == "account_id":
            continue
        spec = page.columns[col.name]
        if col.name in skip:
            exprs.append(_json_literal(loads(spec.default or "null")))
            continue
        expr = _FROM_JSON[col.type][1].format(values[col.name])
        if spec.without:
            gone = _json_literal(dict.fromkeys(sorted(spec.without)))
            # a patch onto a non-object gives the patch itself: only objects are patched
            expr = (
                f"CASE WHEN json_type({expr}) = 'OBJECT' THEN json_merge_patch({expr}, {gone}) END"
            )
        if spec.default is not None:
            expr = f"COALESCE({expr}, {_json_literal(loads(spec.default))})"
        exprs.append(expr)
    records = f"unnest(from_json(j, {_json_literal({'data': [struct]})}).data) AS r"
    # the bodies as plain strings: from_json parses them, a JSON cast would parse them twice
    source = f"(SELECT {records} FROM (SELECT unnest(CAST(? AS VARCHAR[])) AS j))"
    for alias, expr in layers:
        source = f"(SELECT *, {expr} AS {alias} FROM {source})"
    cols = ", ".join(q(c) for c in table.column_names)
    insert = f"INSERT INTO {q(table.name)} ({cols}) SELECT {', '.join(exprs)} FROM {source}"
    if upsert:
        insert += upsert_tail(table)
    return _info_sql(page), insert


#: page bodies one insert reads: planning a statement with a wide from_json structure
#: costs ~2–3 ms, ~25 µs a row of a 100-profile page, so pages go together up to about
#: a thousand rows; more, and the parsed JSON crowds the buffer pool (and costs more a row)
STATEMENT_BYTES = 2_500_000


def _statements(pages: Sequence[PageRows], *, upsert: bool) -> Iterator[list[PageRows]]:
    """``pages`` in the groups one statement inserts: consecutive pages of one shape up to
    :data:`STATEMENT_BYTES`. An upsert takes one page at a time: a key met twice in one
    ``ON CONFLICT DO UPDATE`` (a record that moved on to a later page while the pages
    were read) is an error, across statements an update."""
    group: list[PageRows] = []
    size = 0
    for page in pages:
        same = bool(group) and (page.table, page.columns, page.cursor) == (
            group[0].table,
            group[0].columns,
            group[0].cursor,
        )
        if group and (upsert or not same or size + len(page.body) > STATEMENT_BYTES):
            yield group
            group, size = [], 0
        group.append(page)
        size += len(page.body)
    if group:
        yield group


def _members_sql(path: tuple[str, ...]) -> str:
    """The member names of the objects at ``path`` in every record of a list of bodies
    (one list, each name once): one parse a body, ~4 µs a profile, where reading every
    record's attributes whole to patch them costs ~15."""
    if not all(p.isidentifier() for p in path):
        raise ValueError(f"path {path!r}: member names must be identifiers")
    where = "$.data[*]" + "".join(f'."{p}"' for p in path)
    return (
        f"SELECT list_distinct(flatten(flatten(list(json_keys(j, '{where}')))))"
        " FROM (SELECT unnest(CAST(? AS VARCHAR[])) AS j)"
    )


def _under(path: tuple[str, ...], parent: tuple[str, ...]) -> bool:
    return len(path) > len(parent) and path[: len(parent)] == parent


def _read_plan(
    items: Sequence[tuple[str, tuple[str, ...], str]], alias: str, aliases: Iterator[int]
) -> tuple[dict[str, Any], dict[str, str], list[tuple[str, str]]]:
    """How to read ``items`` (column, path, type) out of the struct ``alias``: its from_json
    structure, each column's value expression, and the nested reads it needs (alias,
    expression) in the order they depend on each other."""
    parents = [
        path
        for _, path, ctype in items
        if ctype == "json" and any(_under(other, path) for _, other, _ in items)
    ]
    parents = [p for p in parents if not any(_under(p, other) for other in parents)]
    flat: list[tuple[tuple[str, ...], str]] = []
    values: dict[str, str] = {}
    layers: list[tuple[str, str]] = []
    for name, path, ctype in items:
        if any(_under(path, p) for p in parents):
            continue
        if any(_overlaps(path, other) for other, _ in flat):
            raise ValueError(f"column {name}: its path {path!r} overlaps another column's")
        flat.append((path, _FROM_JSON[ctype][0]))
        values[name] = f"{alias}." + ".".join(q(p) for p in path)
    for parent in parents:
        inner = f"n{next(aliases)}"
        children = [(n, p[len(parent) :], t) for n, p, t in items if _under(p, parent)]
        struct, inner_values, inner_layers = _read_plan(children, inner, aliases)
        source = f"{alias}." + ".".join(q(p) for p in parent)
        layers.append((inner, f"from_json({source}, {_json_literal(struct)})"))
        layers += inner_layers
        values.update(inner_values)
    return _nest(flat), values, layers


def _info_sql(page: PageRows) -> str:
    """``links.next`` and the latest cursor: from the last record when the page is sorted
    by it (two paths read in one pass), else the latest of all."""
    if page.cursor is None:
        return "SELECT json_extract_string(?, '$.links.next'), NULL"
    if not all(p.isidentifier() for p in page.cursor):
        raise ValueError(f"cursor path {page.cursor!r}: member names must be identifiers")
    if page.cursor_sorted:
        last = "$.data[#-1]" + "".join(f'."{p}"' for p in page.cursor)
        return (
            "SELECT r[1], TRY_CAST(r[2] AS TIMESTAMPTZ)"
            f" FROM (SELECT json_extract_string(?, ['$.links.next', '{last}']) AS r)"
        )
    shape = {"links": {"next": "VARCHAR"}, "data": [_nest([(page.cursor, "VARCHAR")])]}
    field = ".".join(q(p) for p in page.cursor)
    return (
        "SELECT p.links.next,"
        f" list_max(list_transform(p.data, lambda x: TRY_CAST(x.{field} AS TIMESTAMPTZ)))"
        f" FROM (SELECT from_json(?, {_json_literal(shape)}) AS p)"
    )
