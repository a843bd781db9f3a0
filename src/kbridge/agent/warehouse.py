"""Warehouse tools: read-only SQL and the analyses, answered from synced data (0 API requests).

The SQL tool cannot write because its connection cannot: DuckDB opens the file
``read_only`` with external access off (no other file read or written, no
``ATTACH``, no extension loaded) and its configuration locked, and PostgreSQL runs
each query in a ``READ ONLY`` transaction whose mode a first query has fixed, as
one prepared statement (so no ``COMMIT; DELETE …``). No statement text is inspected.

One connection serves a burst of calls and is closed once idle
(:class:`WarehouseHandle`), so the DuckDB file is not held locked while the
assistant sits idle (``kbridge sync`` can write to it then); a query runs off
the event loop and is interrupted at its timeout.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from kbridge.agent.tools import ToolSpec, plain
from kbridge.analytics import campaign_performance, churn, consent, lifecycle, top_products
from kbridge.analytics.frame import Frame
from kbridge.api.validation import ValidationError
from kbridge.warehouse import Capabilities, duckdb_path
from kbridge.warehouse.errors import DestinationUnavailableError, WarehouseError

if TYPE_CHECKING:
    from kbridge.agent.server import Call
    from kbridge.warehouse import Batch, Table

__all__ = [
    "DEFAULT_MAX_ROWS",
    "MAX_ROWS",
    "WAREHOUSE_CONVENTIONS",
    "ReadOnlyWarehouse",
    "WarehouseHandle",
    "warehouse_tools",
]

DEFAULT_MAX_ROWS = 100
MAX_ROWS = 1000
Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class QueryResult:
    columns: tuple[str, ...]
    rows: tuple[Row, ...]
    truncated: bool


class ReadOnlyWarehouse:
    """A warehouse connection that cannot write; the analyses read it like any warehouse."""

    def __init__(self, url: str, *, timeout: float) -> None:
        self._timeout = timeout
        self._duckdb = duckdb_path(url)
        self._url = url  # never shown: a PostgreSQL URL may carry a password
        self._lock = threading.Lock()
        if self._duckdb is None:
            import psycopg

            try:
                self._pg: Any = psycopg.connect(url, autocommit=False)
            except psycopg.Error:
                raise DestinationUnavailableError(
                    "cannot connect to the PostgreSQL warehouse"
                ) from None
            self._pg.read_only = True
            self._con: Any = None
        else:
            import duckdb

            path = self._duckdb
            try:
                self._con = duckdb.connect(
                    path,
                    read_only=True,
                    config={"enable_external_access": False, "threads": 2},
                )
                self._con.execute("SET TimeZone = 'UTC'")
                self._con.execute("SET lock_configuration = true")
            except duckdb.Error as exc:
                raise DestinationUnavailableError(
                    f"cannot open the DuckDB warehouse {path!r} read-only: {_first_line(exc)}"
                ) from None
            self._pg = None

    @property
    def capabilities(self) -> Capabilities:
        if self._pg is not None:
            return Capabilities("postgresql", "copy", concurrent_writers=True, json_type="JSONB")
        return Capabilities(
            "duckdb", "unnest", concurrent_writers=False, json_type="JSON", page_rows=True
        )

    def __repr__(self) -> str:
        return "ReadOnlyWarehouse(duckdb)" if self._pg is None else "ReadOnlyWarehouse(postgresql)"

    def migrate(self, tables: Sequence[Table]) -> None:
        raise WarehouseError("the agent's warehouse connection is read-only")

    def commit(self, batch: Batch) -> None:
        raise WarehouseError("the agent's warehouse connection is read-only")

    def load_state(self, account_id: str, stream: str) -> dict[str, dict[str, Any]]:
        raise WarehouseError("the agent's warehouse connection does not read sync state")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Every row (the analyses' own SQL); interrupted at the timeout."""
        return list(self.run(sql, params, max_rows=None).rows)

    def run(self, sql: str, params: Sequence[Any] = (), *, max_rows: int | None) -> QueryResult:
        """At most ``max_rows`` rows of ``sql`` (``truncated`` says more were there)."""
        with self._lock:
            if self._pg is not None:
                return self._run_pg(sql, params, max_rows)
            return self._run_duckdb(sql, params, max_rows)

    def _run_duckdb(self, sql: str, params: Sequence[Any], max_rows: int | None) -> QueryResult:
        import duckdb

        with _deadline(self._timeout, self._con.interrupt) as expired:
            try:
                cur = self._con.execute(sql, list(params))
                columns = tuple(d[0] for d in cur.description or ())
                rows = cur.fetchall() if max_rows is None else cur.fetchmany(max_rows + 1)
            except duckdb.Error as exc:
                if expired():
                    raise WarehouseError(
                        f"query stopped at the {self._timeout:g} s timeout"
                    ) from None
                raise WarehouseError(f"query refused: {_first_line(exc)}") from None
        return _result(columns, rows, max_rows)

    def _run_pg(self, sql: str, params: Sequence[Any], max_rows: int | None) -> QueryResult:
        import psycopg

        con: psycopg.Connection[Any] = self._pg
        # an agent's SQL has no parameters: its text is sent as it is ('%' and '?' literal)
        text, args = (sql.replace("?", "%s"), list(params)) if params else (sql, None)
        columns: tuple[str, ...] = ()
        rows: list[Any] = []
        try:
            # the first statement opens a READ ONLY transaction (the connection's
            # read_only); it is rolled back whatever happens: nothing read is committed
            with con.cursor() as cur:
                cur.execute(f"SET LOCAL statement_timeout = {int(self._timeout * 1000)}")
                cur.execute("SET LOCAL TIME ZONE 'UTC'")
                # a query (a snapshot) fixes the READ ONLY mode: SET TRANSACTION cannot undo it
                cur.execute("SELECT 1")
                # prepared (the extended protocol): one statement only, no "COMMIT; DELETE …"
                cur.execute(text.encode(), args, prepare=True)
                if cur.description:
                    columns = tuple(d.name for d in cur.description)
                    rows = cur.fetchall() if max_rows is None else cur.fetchmany(max_rows + 1)
        except psycopg.errors.QueryCanceled:
            raise WarehouseError(f"query stopped at the {self._timeout:g} s timeout") from None
        except psycopg.Error as exc:
            raise WarehouseError(f"query refused: {_first_line(exc)}") from None
        finally:
            con.rollback()
        return _result(columns, rows, max_rows)

    def close(self) -> None:
        with self._lock:
            (self._pg or self._con).close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _result(columns: tuple[str, ...], rows: Sequence[Any], max_rows: int | None) -> QueryResult:
    truncated = max_rows is not None and len(rows) > max_rows
    kept = rows[:max_rows] if max_rows is not None else rows
    return QueryResult(columns, tuple(tuple(r) for r in kept), truncated)


@contextmanager
def _deadline(seconds: float, interrupt: Callable[[], None]) -> Iterator[Callable[[], bool]]:
    """Call ``interrupt`` once ``seconds`` pass (a wall-clock guard, not a measurement)."""
    fired = threading.Event()

    def fire() -> None:
        fired.set()
        interrupt()

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    try:
        yield fired.is_set
    finally:
        timer.cancel()


class WarehouseHandle:
    """One read-only connection, reused while calls keep coming and closed once idle.

    Opening a DuckDB connection costs tens of milliseconds, a third of a call's
    budget; holding it open for good would keep the file locked against ``kbridge
    sync`` for as long as the assistant runs. So a burst of calls shares one
    connection and ``idle`` seconds after the last call the file is let go.
    """

    def __init__(self, url: str, *, timeout: float, idle: float) -> None:
        self._url = url
        self._timeout = timeout
        self._idle = idle
        self._lock = threading.Lock()
        self._open: ReadOnlyWarehouse | None = None
        self._uses = 0

    def __repr__(self) -> str:
        return f"WarehouseHandle(open={self._open is not None})"

    def use(self, work: Callable[[ReadOnlyWarehouse], Any]) -> Any:
        """Run ``work`` on the connection (blocking: call it off the event loop)."""
        with self._lock:
            if self._open is None:
                self._open = ReadOnlyWarehouse(self._url, timeout=self._timeout)
            self._uses += 1
            try:
                return work(self._open)
            finally:
                self._close_later(self._uses)

    def _close_later(self, use: int) -> None:
        timer = threading.Timer(self._idle, self._close_if_idle, args=(use,))
        timer.daemon = True
        timer.start()

    def _close_if_idle(self, use: int) -> None:
        with self._lock:
            if self._uses == use:
                self.release_locked()

    def release(self) -> None:
        """Close the connection now (before a writer in this process opens the file)."""
        with self._lock:
            self.release_locked()

    def release_locked(self) -> None:
        if self._open is not None:
            self._open.close()
            self._open = None


# -- the tools -------------------------------------------------------------------------------
async def _with_warehouse(call: Call, work: Callable[[ReadOnlyWarehouse], Any]) -> Any:
    handle = call.agent.warehouse
    if handle is None:
        raise ValidationError("warehouse", "no warehouse: start kbridge mcp with --warehouse URL")
    return await asyncio.to_thread(handle.use, work)


def _max_rows(raw: Any) -> int:
    if raw is None:
        return DEFAULT_MAX_ROWS
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_ROWS:
        raise ValidationError("max_rows", f"must be a whole number from 1 to {MAX_ROWS}")
    return raw


async def _sql(call: Call, args: Mapping[str, Any]) -> Any:
    sql = args.get("sql")
    if not isinstance(sql, str) or not sql.strip():
        raise ValidationError("sql", "give one SQL statement")
    cap = _max_rows(args.get("max_rows"))
    found = await _with_warehouse(call, lambda wh: wh.run(sql, max_rows=cap))
    return {
        "columns": list(found.columns),
        "rows": [plain(list(r)) for r in found.rows],
        "truncated": found.truncated,
    }


async def _tables(call: Call, args: Mapping[str, Any]) -> Any:
    sql = (
        "SELECT table_name, column_name, data_type FROM information_schema.columns"
        " WHERE table_schema NOT IN ('information_schema', 'pg_catalog')"
        " ORDER BY table_name, ordinal_position"
    )
    rows = await _with_warehouse(call, lambda wh: wh.query(sql))
    tables: dict[str, list[str]] = {}
    for name, column, kind in rows:
        tables.setdefault(str(name), []).append(f"{column} {kind}")
    return tables


def _account(wh: ReadOnlyWarehouse, call: Call, given: Any) -> str:
    """The account to analyse: as given, else the connection's, else the warehouse's only one."""
    if isinstance(given, str) and given:
        return given
    found = [str(r[0]) for r in wh.query("SELECT DISTINCT account_id FROM profiles")]
    if call.account.account_id in found:
        return str(call.account.account_id)
    if len(found) == 1:
        return found[0]
    if not found:
        raise ValidationError("account", "the warehouse holds no account: run kbridge sync")
    raise ValidationError("account", f"the warehouse holds several: {', '.join(sorted(found))}")


def _when(raw: Any, name: str) -> datetime | None:
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(name, f"{raw!r} is not an ISO 8601 datetime") from None
    if value.tzinfo is None:
        raise ValidationError(name, "needs a timezone offset, e.g. 2026-01-01T00:00:00Z")
    return value


def _top(frame: Frame, n: int) -> dict[str, Any]:
    rows = frame.records()
    return {"title": frame.title, "rows": plain(rows[:n]), "total": len(rows), **plain(frame.notes)}


def _n(raw: Any) -> int:
    if raw is None:
        return 10
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_ROWS:
        raise ValidationError("top", f"must be a whole number from 1 to {MAX_ROWS}")
    return raw


async def _lifecycle(call: Call, args: Mapping[str, Any]) -> Any:
    def work(wh: ReadOnlyWarehouse) -> Any:
        # months=1: the answer is today's stages, not the monthly history
        result = lifecycle(
            wh,
            _account(wh, call, args.get("account")),
            as_of=_when(args.get("as_of"), "as_of"),
            months=1,
        )
        return {"as_of": result.as_of.isoformat(), "stages": plain(result.stages.records())}

    return await _with_warehouse(call, work)


async def _churn(call: Call, args: Mapping[str, Any]) -> Any:
    n = _n(args.get("top"))

    def work(wh: ReadOnlyWarehouse) -> Any:
        result = churn(
            wh, _account(wh, call, args.get("account")), as_of=_when(args.get("as_of"), "as_of")
        )
        return {"summary": result.summary(), "top_risks": _top(result.profiles, n)}

    return await _with_warehouse(call, work)


async def _campaigns(call: Call, args: Mapping[str, Any]) -> Any:
    n = _n(args.get("top"))

    def work(wh: ReadOnlyWarehouse) -> Any:
        # the tool answers with the messages only: the reconciliation would be discarded
        result = campaign_performance(
            wh,
            _account(wh, call, args.get("account")),
            since=_when(args.get("since"), "since"),
            reconcile=False,
        )
        return {"messages": _top(result.messages, n)}

    return await _with_warehouse(call, work)


async def _consent(call: Call, args: Mapping[str, Any]) -> Any:
    def work(wh: ReadOnlyWarehouse) -> Any:
        result = consent(
            wh,
            _account(wh, call, args.get("account")),
            as_of=_when(args.get("as_of"), "as_of"),
            months=1,
        )
        return {
            "as_of": result.as_of.isoformat(),
            "current": plain(result.current.records()),
            "suppressions": plain(result.suppressions.records()),
        }

    return await _with_warehouse(call, work)


async def _products(call: Call, args: Mapping[str, Any]) -> Any:
    n = _n(args.get("top"))

    def work(wh: ReadOnlyWarehouse) -> Any:
        result = top_products(
            wh,
            _account(wh, call, args.get("account")),
            as_of=_when(args.get("as_of"), "as_of"),
            top=n,
        )
        return {
            "as_of": result.as_of.isoformat(),
            "overall": _top(result.overall, n),
            "by_segment": plain(result.by_segment.records()),
        }

    return await _with_warehouse(call, work)


#: said once in the instructions (:data:`WAREHOUSE_CONVENTIONS`), not on every tool
_ACCOUNT = {"account": {"type": "string"}}
_AS_OF = {"as_of": {"type": "string", "format": "date-time"}}
_TOP = {"top": {"type": "integer"}}

WAREHOUSE_CONVENTIONS = (
    "Warehouse tools read the synced warehouse, not Klaviyo: `account` defaults to the "
    "connection's (or the warehouse's only) account, `as_of` to just after the latest data, "
    f"`top` to 10 rows; warehouse_sql returns {DEFAULT_MAX_ROWS} rows unless `max_rows` "
    f"(≤ {MAX_ROWS})."
)


def warehouse_tools() -> list[ToolSpec]:
    """The warehouse's tools: SQL, its tables, and the analyses (no API request)."""

    def tool(
        name: str,
        description: str,
        handler: Any,
        props: Mapping[str, Any] | None = None,
        required: tuple[str, ...] = (),
    ) -> ToolSpec:
        return ToolSpec(
            name=name,
            description=description,
            handler=handler,
            properties=dict(props or {}),
            required=required,
            api=False,
            warehouse=True,
        )

    return [
        tool(
            "warehouse_sql",
            f"Read-only SQL on the synced warehouse (≤{MAX_ROWS} rows, timed out)",
            _sql,
            props={
                "sql": {"type": "string", "description": "one SELECT (writes are refused)"},
                "max_rows": {"type": "integer"},
            },
            required=("sql",),
        ),
        tool("warehouse_tables", "The warehouse's tables and columns", _tables),
        tool(
            "analytics_lifecycle",
            "Profiles per lifecycle stage (new, active, at risk, lapsed…)",
            _lifecycle,
            props={**_ACCOUNT, **_AS_OF},
        ),
        tool(
            "analytics_churn_top_risks",
            "Churn model summary and the profiles most likely to churn",
            _churn,
            props={**_ACCOUNT, **_AS_OF, **_TOP},
        ),
        tool(
            "analytics_campaign_performance",
            "Campaign and flow messages by revenue, from synced events",
            _campaigns,
            props={
                **_ACCOUNT,
                **_TOP,
                "since": {"type": "string", "format": "date-time"},
            },
        ),
        tool(
            "analytics_top_products",
            "Top products by revenue, overall and per RFM segment, named by the catalogue",
            _products,
            props={**_ACCOUNT, **_AS_OF, **_TOP},
        ),
        tool(
            "analytics_consent",
            "Email/SMS consent states and suppression reasons",
            _consent,
            props={**_ACCOUNT, **_AS_OF},
        ),
    ]
