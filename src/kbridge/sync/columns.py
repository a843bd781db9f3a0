"""A warehouse table declared once: one :class:`Field` per column, everything else derived.

Each field names its column, SQL type, where its value sits in a JSON:API record
(a :class:`Source`), whether it is part of the key and whether it may be NULL.
From the fields of a :class:`TableSpec` come

* ``table``: the :class:`~kbridge.warehouse.Table` (the DDL: ``account_id`` first,
  the key fields after it, in declaration order);
* ``extract``: the Python row extractor, ``(record, context) -> tuple`` in column
  order (without ``account_id`` and the run column the engine adds);
* ``from_json``: the paths a warehouse that reads page bodies itself uses
  (:class:`~kbridge.warehouse.FromJson`), or None when a column has no place in the
  record (the extractor's context, a custom function).

The extractor is generated as Python source and compiled once, at import: a row
costs what a hand-written function cost (one ``get`` per attribute, no loop over
the fields), which the profiles and events syncs are measured by.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from kbridge.core.jsoncodec import dumps_str
from kbridge.warehouse import Column, ColumnType, FromJson, Table

__all__ = [
    "CONTEXT",
    "ID",
    "NONE",
    "OTHERS",
    "RAW",
    "RUN",
    "Extract",
    "Field",
    "Record",
    "Source",
    "TableSpec",
    "at",
    "attr",
    "custom",
    "rel",
    "spec",
]

Record = Mapping[str, Any]
"""One JSON:API resource object as decoded (a plain mapping: no object is built per record)."""

Extract = Callable[[Record, "str | None"], tuple[Any, ...]]

SourceKind = Literal["path", "rel", "context", "raw", "others", "run", "custom", "none"]


@dataclass(frozen=True, slots=True)
class Source:
    """Where a column's value comes from; build one with the helpers below."""

    kind: SourceKind
    #: the members from the record down (``path``), or the relationship's name (``rel``)
    path: tuple[str, ...] = ()
    #: ``str()`` the value (ids and enums Klaviyo may one day send as numbers)
    stringify: bool = False
    #: ``rel``: the extractor's context when the record names no such relationship
    or_context: bool = False
    #: JSON text for a missing value (``json`` columns), else NULL
    default: str | None = None
    #: ``custom``: reads the record in Python only (no in-database reader then)
    read: Callable[[Record, str | None], Any] | None = field(default=None, compare=False)


def at(*path: str, stringify: bool = False, default: str | None = None) -> Source:
    """The value at ``path`` from the record (``at("links", "self")``); NULL when absent
    (or ``default``, JSON text, for a ``json`` column)."""
    if not path:
        raise ValueError("a path names at least one member")
    return Source("path", tuple(path), stringify, default=default)


def attr(*path: str, stringify: bool = False, default: str | None = None) -> Source:
    """An attribute, or a member inside one: ``attr("integration", "name")``."""
    return at("attributes", *path, stringify=stringify, default=default)


def rel(name: str, *, or_context: bool = False) -> Source:
    """The id a to-one relationship points at (``relationships.<name>.data.id``)."""
    return Source("rel", (name,), stringify=True, or_context=or_context)


def custom(read: Callable[[Record, str | None], Any]) -> Source:
    """A value only Python can compute (``read(record, context)``): the table is then
    read into rows by Python alone."""
    return Source("custom", read=read)


#: the record's id (as text)
ID = Source("path", ("id",), stringify=True)
#: the extractor's context: the partition, or the parent's id for a membership or child
CONTEXT = Source("context")
#: every attribute as JSON (``{}`` when there are none)
RAW = Source("raw")
#: the attributes no other column holds, as JSON (``{}``: none; Klaviyo may add some)
OTHERS = Source("others")
#: the sync run that wrote the row; the engine appends it, the extractor leaves it out
RUN = Source("run")
#: filled by the engine from something other than a resource (report results)
NONE = Source("none")


@dataclass(frozen=True, slots=True)
class Field:
    """One column: its name, SQL type, source, key membership and nullability.

    Key fields are never NULL; ``nullable=False`` makes another column ``NOT NULL`` in
    the DDL of a new table (other writers, such as erasure and test seeds, may leave
    ``raw`` and ``other_attributes`` NULL, so they stay nullable).
    """

    name: str
    type: ColumnType = "text"
    source: Source = NONE
    key: bool = False
    nullable: bool | None = None

    @property
    def not_null(self) -> bool:
        if self.nullable is not None:
            return not self.nullable
        return self.key


def _nested(a: Any, path: tuple[str, ...]) -> Any:
    """``a[p0][p1]…``, None where a step is missing or not an object."""
    for part in path:
        if not isinstance(a, dict):
            return None
        a = a.get(part)
    return a


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _j(value: Any) -> str | None:
    """Nested value → JSON text (``None`` stays NULL)."""
    return None if value is None else dumps_str(value)


def _others(a: Mapping[str, Any], held: frozenset[str]) -> str:
    return dumps_str({k: v for k, v in a.items() if k not in held})


def _rel_id(r: Record, name: str) -> str | None:
    """The id a to-one relationship points at (plain dict reads: this runs per event)."""
    rels = r.get("relationships")
    found = rels.get(name) if isinstance(rels, dict) else None
    data = found.get("data") if isinstance(found, dict) else None
    if isinstance(data, dict):
        value = data.get("id")
        return None if value is None else str(value)
    if isinstance(data, list) and data and isinstance(data[0], dict):
        first = data[0].get("id")
        return None if first is None else str(first)
    return None


#: what the generated extractors call (all the names their source may use)
_HELPERS: dict[str, Any] = {
    "_nested": _nested,
    "_str": _str,
    "_int": _int,
    "_j": _j,
    "_others": _others,
    "_rel_id": _rel_id,
    "_dumps": dumps_str,
    "_isinstance": isinstance,
    "_dict": dict,
}


def _expression(f: Field, n: int, names: dict[str, Any]) -> str:
    """The Python expression giving field ``f``'s value from ``r`` (the record), ``a`` (its
    attributes, ``{}`` when not an object) and ``context``."""
    s = f.source
    if s.kind == "context":
        return "context"
    if s.kind == "raw":
        return "_dumps(a)"
    if s.kind == "others":
        return "_others(a, _held)"
    if s.kind == "rel":
        expr = f"_rel_id(r, {s.path[0]!r})"
        return f"({expr} or context)" if s.or_context else expr
    if s.kind == "custom":
        names[f"_custom{n}"] = s.read
        return f"_custom{n}(r, context)"
    if s.kind != "path":
        raise ValueError(f"column {f.name}: a {s.kind} source is not read from a record")
    path = s.path
    if path[0] == "attributes" and len(path) == 2:
        expr = f"a.get({path[1]!r})"
    elif path[0] == "attributes":
        expr = f"_nested(a, {path[1:]!r})"
    elif len(path) == 1:
        expr = f"r.get({path[0]!r})"
    else:
        expr = f"_nested(r, {path!r})"
    if s.stringify:
        return f"_str({expr})"
    if f.type == "json":
        # _j gives None or non-empty text, so ``or`` stands for "when missing"
        return f"(_j({expr}) or {s.default!r})" if s.default is not None else f"_j({expr})"
    if f.type == "bigint":
        # int() truncates a fraction, as the in-database reader does
        return f"_int({expr})"
    return expr


def _compile(name: str, fields: Sequence[Field], held: frozenset[str]) -> Extract:
    """One function returning the fields' values as a tuple, compiled from source text
    built out of the declaration (never out of data: paths are repr'd literals)."""
    names: dict[str, Any] = {**_HELPERS, "_held": held}
    values = [_expression(f, n, names) for n, f in enumerate(fields)]
    source = (
        "def extract(r, context):\n"
        "    a = r.get('attributes')\n"
        "    if not _isinstance(a, _dict):\n"
        "        a = {}\n"
        f"    return ({''.join(v + ', ' for v in values)})\n"
    )
    # the declaration is ours, so is the text: a compiled function costs a row what a
    # hand-written one did, where walking the fields per row cost several times more
    code = compile(source, f"<kbridge.sync.columns: {name}>", "exec")
    exec(code, names)  # noqa: S102
    extract: Extract = names["extract"]
    return extract


def _no_resource(r: Record, context: str | None) -> tuple[Any, ...]:
    raise TypeError("this table's rows are not built from resources")


def _from_json(f: Field, held: frozenset[str]) -> FromJson | None:
    s = f.source
    if s.kind == "path":
        return FromJson(s.path, default=s.default if f.type == "json" else None)
    if s.kind == "rel" and not s.or_context:
        return FromJson(("relationships", s.path[0], "data", "id"))
    if s.kind == "raw":
        return FromJson(("attributes",), default="{}")
    if s.kind == "others":
        return FromJson(("attributes",), default="{}", without=held)
    return None


@dataclass(frozen=True, slots=True)
class TableSpec:
    """A table as fields (see the module's docstring for what is derived from them)."""

    name: str
    fields: tuple[Field, ...]
    description: str = ""
    #: columns earlier versions wrote and this one does not (``migrate`` drops them)
    retired: tuple[str, ...] = ()
    table: Table = field(init=False, repr=False, compare=False)
    extract: Extract = field(init=False, repr=False, compare=False)
    from_json: Mapping[str, FromJson] | None = field(init=False, repr=False, compare=False)
    #: the attributes columns of their own hold; any other lands in an ``OTHERS`` column
    held: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        fields = self.fields
        columns = (Column("account_id", nullable=False), *self._columns())
        key = ("account_id", *(f.name for f in fields if f.key))
        table = Table(self.name, columns, key, self.description, self.retired)
        held = frozenset(
            f.source.path[1]
            for f in fields
            if f.source.kind == "path" and f.source.path[:1] == ("attributes",)
        )
        rowed = [f for f in fields if f.source.kind != "run"]
        if any(f.source.kind == "run" for f in fields[:-1]):
            raise ValueError(f"table {self.name}: the run column comes last (the engine adds it)")
        extract: Extract
        if any(f.source.kind == "none" for f in rowed):
            extract = _no_resource
            paths = None
        else:
            extract = _compile(self.name, rowed, held)
            found = {f.name: _from_json(f, held) for f in rowed}
            paths = (
                {k: v for k, v in found.items() if v is not None}
                if all(v is not None for v in found.values())
                else None
            )
        object.__setattr__(self, "table", table)
        object.__setattr__(self, "extract", extract)
        object.__setattr__(self, "held", held)
        object.__setattr__(self, "from_json", paths)

    def _columns(self) -> list[Column]:
        return [Column(f.name, f.type, nullable=not f.not_null) for f in self.fields]

    @property
    def column_names(self) -> tuple[str, ...]:
        return self.table.column_names

    def inserted(self, index: int, new: Field) -> TableSpec:
        """A copy with ``new`` as the ``index``-th field (0: right after ``account_id``)."""
        fields = (*self.fields[:index], new, *self.fields[index:])
        return TableSpec(self.name, fields, self.description, self.retired)


def spec(
    name: str,
    fields: Sequence[Field],
    *,
    retired: Sequence[str] = (),
    description: str = "",
) -> TableSpec:
    """Shorthand for :class:`TableSpec`."""
    return TableSpec(name, tuple(fields), description, tuple(retired))
