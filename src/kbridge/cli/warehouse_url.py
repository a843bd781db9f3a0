"""Warehouse URLs as users type them: ``duckdb:///tmp/x.duckdb`` is *relative*.

As in SQLAlchemy's SQLite URLs, what follows ``duckdb:///`` is the path, so
``duckdb:///tmp/x.duckdb`` is ``tmp/x.duckdb`` under the working directory and
``duckdb:////tmp/x.duckdb`` is ``/tmp/x.duckdb``. Users type the first meaning
the second; every CLI error about a warehouse file adds :func:`relative_path_hint`,
and every ``--to``/``--from`` help says it (:data:`WAREHOUSE_URL_HELP`).
"""

from __future__ import annotations

from kbridge.core import KbridgeError
from kbridge.warehouse import duckdb_path

__all__ = ["WAREHOUSE_URL_HELP", "relative_path_hint", "with_hint"]

WAREHOUSE_URL_HELP = (
    "duckdb:///rel/path.duckdb (relative to here), duckdb:////abs/path.duckdb (absolute) "
    "or postgresql://user@host/db"
)


def relative_path_hint(url: str) -> str | None:
    """For a DuckDB URL whose relative path looks meant as absolute (``duckdb:///tmp/x``:
    a directory, not ``./``), one sentence naming both readings; else None."""
    try:
        path = duckdb_path(url) if url.startswith("duckdb:") else None
    except KbridgeError:
        return None
    if not path or path == ":memory:" or path.startswith((".", "/", "~")) or "/" not in path:
        return None
    absolute = url.replace("duckdb:///", "duckdb:////", 1)
    return f"{url} is the relative path {path}; use {absolute} for /{path}"


def with_hint(message: str, url: str | None) -> str:
    """``message`` with :func:`relative_path_hint` appended when it applies to ``url``."""
    hint = relative_path_hint(url) if url else None
    return message if hint is None else f"{message} ({hint})"
