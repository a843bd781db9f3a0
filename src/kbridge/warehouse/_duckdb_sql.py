"""The SQL DuckDB loads pages with: column-wise inserts from Python lists, and in-database
reads of page bodies with ``from_json`` (see :mod:`kbridge.warehouse.duckdb`)."""

# Identifiers in SQL text come from kbridge's own schema (quoted by q()); values are bound.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import count
from typing import Any

from kbridge.core.jsoncodec import dumps_str, loads
from kbridge.warehouse._sql import q, upsert_tail
from kbridge.warehouse.base import PageRows
from kbridge.warehouse.errors import PageShapeError
from kbridge.warehouse.schema import Table

# what each column's list parameter is bound as, then how its elements are cast
_LIST = {
    "text": ("VARCHAR[]", None),
    "timestamp": ("VARCHAR[]", "TIMESTAMPTZ"),
    "bigint": ("BIGINT[]", None),
    "double": ("DOUBLE[]", None),
    "boolean": ("BOOLEAN[]", None),
    "json": ("VARCHAR[]", "JSON"),
}

#: joins a text column's values; a record separator, which JSON text never holds unescaped
_SEP = "\x1e"


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
