"""Shared output helpers: one clear line for errors, tables or JSON for data.

``--output table|json|jsonl``: a table by default on a terminal, JSON when
piped (scripts get something parseable without asking). List commands
stream: ``jsonl`` writes each resource as it arrives, ``json`` writes one
array incrementally, ``table`` collects the rows (bounded by ``--limit``).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TextIO

from kbridge.api.errors import ApiError, PermissionDeniedError, redact
from kbridge.api.jsonapi import Document, Resource
from kbridge.core.jsoncodec import dumps

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    err_console: Console

# rich is imported when a table or an error is printed: JSON output (what a script or
# a pipe gets) needs none of it, and importing it cost every command ~45 ms (#18 item 11)

__all__ = [
    "OutputFormat",
    "describe_error",
    "emit",
    "emit_stream",
    "err_console",
    "fail",
    "is_id_column",
    "new_table",
    "resolve_format",
    "to_plain",
]

OutputFormat = Literal["table", "json", "jsonl"]
FORMATS: tuple[OutputFormat, ...] = ("table", "json", "jsonl")


def _err_console() -> Console:
    """The stderr console for messages (``err_console``), made on first use."""
    console: Console | None = globals().get("err_console")
    if console is None:
        from rich.console import Console

        console = Console(stderr=True, highlight=False, soft_wrap=True)
        globals()["err_console"] = console
    return console


def __getattr__(name: str) -> Any:
    if name == "err_console":
        return _err_console()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: attributes shown first in a table when a resource has them
_PREFERRED = ("email", "name", "phone_number", "first_name", "last_name", "status", "datetime")
_TABLE_COLUMNS = 6


def fail(message: str, *, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr and exit non-zero."""
    from rich.markup import escape

    # messages quote filters and parameters ("page[size]", "a [list]"): never markup
    _err_console().print(f"[bold red]error:[/] {escape(message)}", markup=True)
    sys.stderr.flush()
    raise SystemExit(code)


def resolve_format(output: str | None, stream: TextIO | None = None) -> OutputFormat:
    """The chosen format, or table on a terminal and JSON otherwise."""
    if output is None:
        target = stream or sys.stdout
        return "table" if target.isatty() else "json"
    if output not in FORMATS:
        fail(f"--output: {output!r} is not one of {', '.join(FORMATS)}")
    return output


def to_plain(value: Any) -> Any:
    """Resources and documents as plain JSON-able values (what ``json`` output prints)."""
    if isinstance(value, Resource):
        out: dict[str, Any] = {"type": value.type, "id": value.id}
        out["attributes"] = dict(value.attributes)
        # Only linkage is data; relationship "links" are navigation noise in output.
        linked = {
            k: v["data"]
            for k, v in value.relationships.items()
            if isinstance(v, Mapping) and v.get("data") is not None
        }
        if linked:
            out["relationships"] = linked
        return out
    if isinstance(value, Document):
        return to_plain(value.data if not isinstance(value.data, tuple) else list(value.data))
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        text = dumps(value).decode()
        return text if len(text) <= 60 else text[:57] + "…"
    return str(value)


def _columns(rows: list[Resource]) -> list[str]:
    seen: dict[str, None] = {}
    for r in rows:
        for key in r.attributes:
            seen.setdefault(key, None)
    keys = [k for k in _PREFERRED if k in seen] + [k for k in seen if k not in _PREFERRED]
    return keys[:_TABLE_COLUMNS]


def is_id_column(name: str) -> bool:
    """Whether a column holds ids (``id``, ``profile_id``, ``campaign id``)."""
    return name == "id" or name.endswith(("_id", " id"))


def new_table(*columns: str, rows: Sequence[Sequence[str]] = (), title: str | None = None) -> Table:
    """A table with ``rows`` whose id columns are never cut off or ellipsised: ids are what
    people copy. Other columns wrap first; only a terminal too narrow for the ids alone
    folds them onto a second line (still whole), never drops characters."""
    from rich.table import Table

    table = Table(title=title)
    for i, name in enumerate(columns):
        if is_id_column(name):
            widest = max((len(r[i]) for r in rows if i < len(r)), default=0)
            table.add_column(name, overflow="fold", min_width=max(len(name), min(widest, 64)))
        else:
            table.add_column(name)
    for row in rows:
        table.add_row(*row)
    return table


def _table(rows: list[Resource], console: Console) -> None:
    columns = _columns(rows)
    cells = [[r.type, r.id or "", *(_cell(r.attributes.get(c)) for c in columns)] for r in rows]
    console.print(new_table("type", "id", *columns, rows=cells))


def emit(result: Any, fmt: OutputFormat, *, stream: TextIO | None = None) -> None:
    """Print one command's result (a resource, a list, a count, or nothing)."""
    out = stream or sys.stdout
    if result is None:
        return
    if isinstance(result, Document):
        result = result.data if not isinstance(result.data, tuple) else list(result.data)
    items = result if isinstance(result, list) else None
    if fmt == "table":
        from rich.console import Console

        console = Console(file=out, highlight=False, soft_wrap=True)
        if isinstance(result, Resource):
            _detail(result, console)
        elif items is not None and all(isinstance(i, Resource) for i in items):
            _table(items, console)
        elif isinstance(result, Mapping):
            for key, value in result.items():
                console.print(f"{key}: {_cell(to_plain(value))}", markup=False)
        else:
            console.print(_cell(to_plain(result)))
        return
    if fmt == "jsonl" and items is not None:
        for item in items:
            out.write(dumps(to_plain(item)).decode() + "\n")
        return
    out.write(dumps(to_plain(result)).decode() + "\n")


def _detail(resource: Resource, console: Console) -> None:
    from rich.table import Table

    table = Table("attribute", "value", title=f"{resource.type} {resource.id or ''}".strip())
    for key, value in resource.attributes.items():
        table.add_row(key, _cell(value))
    console.print(table)


async def emit_stream(
    items: AsyncIterator[Any],
    fmt: OutputFormat,
    *,
    limit: int | None,
    stream: TextIO | None = None,
) -> int:
    """Print a list command's resources as they arrive (up to ``limit``); how many were printed."""
    out = stream or sys.stdout
    count = 0
    rows: list[Resource] = []
    if fmt == "json":
        out.write("[")
    try:
        async for item in items:
            if limit is not None and count >= limit:
                break
            if fmt == "jsonl":
                out.write(dumps(to_plain(item)).decode() + "\n")
                out.flush()
            elif fmt == "json":
                out.write(("," if count else "") + dumps(to_plain(item)).decode())
            else:
                rows.append(item)
            count += 1
    finally:  # --limit stops paging at once: close the paginator, not leave it to the GC
        aclose = getattr(items, "aclose", None)
        if aclose is not None:
            await aclose()
    if fmt == "json":
        out.write("]\n")
    elif fmt == "table":
        from rich.console import Console

        _table(rows, Console(file=out, highlight=False, soft_wrap=True))
    return count


def describe_error(exc: BaseException, *, action: str | None = None, debug: bool = False) -> str:
    """One line for the user; with ``debug`` the request id, status and operation too."""
    if isinstance(exc, PermissionDeniedError) and action:
        scopes = " ".join(exc.required_scopes) or "it needs"
        line = f"this key lacks the scope {scopes} needed by '{action}'"
        if debug:
            line += f" ({redact(str(exc))})"
        elif exc.request_id:
            line += f" (request id {exc.request_id})"
        return line
    if isinstance(exc, ApiError):
        if debug:
            return redact(str(exc))
        d = exc.details
        head = f"{d.status} " if d.status is not None else ""
        text = d.detail or d.title or d.code or "request failed"
        where = f" (at {d.source_pointer})" if d.source_pointer else ""
        rid = f" [request id {d.request_id}]" if d.request_id else ""
        prefix = f"'{action}' failed: " if action else ""
        # the subclass's facts are what the user acts on (the existing profile's id)
        notes = "".join(f"; {redact(n)}" for n in exc.notes)
        return f"{prefix}{head}{redact(text)}{where}{notes}{rid}"
    return redact(str(exc))
