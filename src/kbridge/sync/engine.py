"""The sync engine: streams run concurrently, each page committed with its bookmark.

Every page becomes one :class:`~kbridge.warehouse.Batch` — its rows and the
bookmark they justify — applied in one transaction, so whatever stops a run
(an exception, a kill, a lost connection) the warehouse holds a consistent
prefix and the next run resumes from it. Pacing is the client's: every
stream goes through the same :class:`~kbridge.api.AsyncClient`, whose limiter
keeps each rate tier under Klaviyo's ceiling, so streams of different tiers
proceed in parallel at their own speeds.

Writes are blocking database calls: they run in a worker thread, one batch
at a time per warehouse, so the event loop keeps fetching while a page is
written.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import uuid
from collections.abc import (
    AsyncIterator,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from kbridge import catalog
from kbridge.api import AsyncClient, Document, QuotaExhaustedError
from kbridge.api.capabilities import SYNC
from kbridge.api.jsonapi import next_link
from kbridge.api.pagination import remember_next
from kbridge.core.clock import Clock, SystemClock, utc
from kbridge.core.errors import ConfigurationError
from kbridge.core.jsoncodec import JSONDecodeError, dumps_str
from kbridge.sync.errors import SyncError
from kbridge.sync.state import (
    EPOCH_FLOOR,
    advance,
    cursor_filter,
    format_ts,
    join_filters,
    max_cursor,
    parse_ts,
    resume_from,
)
from kbridge.sync.streams import (
    REPORT_STATISTICS,
    RUN_COLUMN,
    Partition,
    Report,
    Stream,
    as_record,
    select_streams,
)
from kbridge.sync.windows import ReportProgress, Window, plan_windows
from kbridge.warehouse import (
    SEEN_TABLE,
    Batch,
    DeleteUnseen,
    DeleteWhere,
    DestinationBusyError,
    PageInfo,
    PageLoader,
    PageRows,
    PageShapeError,
    StateUpdate,
    StreamLocker,
    Table,
    Upsert,
    Warehouse,
    open_warehouse,
)

__all__ = [
    "ClientSource",
    "ProgressCallback",
    "ReportProgress",
    "ReportProgressCallback",
    "StreamDoneCallback",
    "StreamResult",
    "SyncOptions",
    "SyncResult",
    "run",
]

T = TypeVar("T")

#: parents (lists, segments, flow actions) whose members are read at once; the limiter paces
_PARENT_CONCURRENCY = 4

#: DuckDB settings for a destination the sync opens from a URL (the URL's own
#: ``?memory_limit=…&threads=…`` win): a bounded buffer pool keeps the process's memory
#: flat as the account grows (the default, 80 % of RAM, keeps every page of the table),
#: and one page's upsert gains little from more than one thread
DUCKDB_MEMORY_LIMIT = "96MB"
DUCKDB_THREADS = 1

ProgressCallback = Callable[[str, int], None]
#: hears of each stream's end (done or failed), e.g. to stop its spinner and timer
StreamDoneCallback = Callable[["StreamResult"], None]
"""``callback(stream_name, records_just_committed)`` after every commit."""
ReportProgressCallback = Callable[[ReportProgress], None]
"""``callback(progress)`` once a report stream is planned and after each of its requests."""


@dataclass(frozen=True, slots=True)
class SyncOptions:
    start_date: datetime | None = None
    full_refresh: bool = False
    reconcile: bool = False
    predictive_analytics: bool = False
    #: concurrent event slices (all share the events rate tier through the limiter)
    slice_concurrency: int = 4
    #: re-read window behind each incremental stream's bookmark: one for all streams, or
    #: per stream name; unset streams keep their own (events and flow reports 7 days,
    #: campaign reports 2, ``updated`` streams 1)
    lookback: timedelta | Mapping[str, timedelta] | None = None

    def lookback_for(self, stream: Stream) -> timedelta:
        """The lookback ``stream`` uses in this run."""
        chosen = self.lookback
        if isinstance(chosen, timedelta):
            return chosen
        if chosen is not None and stream.name in chosen:
            return chosen[stream.name]
        return stream.lookback


@dataclass(slots=True)
class StreamResult:
    stream: str
    records: int = 0
    pages: int = 0
    seconds: float = 0.0
    error: str | None = None
    #: the most the client's pacing let the stream send, for "% of rate budget": requests
    #: a second, and at once (None when it did not pace)
    budget_rate: float | None = None
    budget_burst: int = 0
    #: the most requests the client's pacing allowed in ``seconds`` (its windows' count);
    #: when set, "% of rate budget" is measured against it instead of the rate and burst
    budget_allowed: float | None = None
    #: not an error, but the user should know: e.g. a report stream that stopped at its
    #: daily quota and resumes on a later run
    note: str | None = None
    #: of ``records``, those read again by the lookback (report streams: rows of days
    #: before the run's first new day); the rest are new
    reread: int = 0

    @property
    def budget_used(self) -> float | None:
        """Requests as a share of the most the client's pacing let the stream send in its
        time (1.0: the rate limits, not the client or the server, set the pace).

        Measured against ``budget_allowed`` (what the limiter's windows allowed in the
        time) when known, else ``budget_burst + budget_rate × seconds``, so a stream
        that ran at the ceiling reads near 100 % however short it was. None for runs
        under a second or of fewer than three requests (too few to say), and when the
        client did not pace.
        """
        if not self.budget_rate or self.seconds < 1.0 or self.pages < 3:
            return None
        if self.budget_allowed:
            return self.pages / self.budget_allowed
        return self.pages / (self.budget_burst + self.budget_rate * self.seconds)

    def to_dict(self) -> dict[str, Any]:
        rate = self.records / self.seconds if self.seconds > 0 else None
        budget = self.budget_used
        return {
            "stream": self.stream,
            "records": self.records,
            "pages": self.pages,
            "seconds": round(self.seconds, 3),
            "records_per_second": None if rate is None else round(rate, 1),
            "rate_budget_pct": None if budget is None else round(100 * budget, 1),
            "error": self.error,
            "note": self.note,
            "reread": self.reread,
        }


@dataclass(slots=True)
class SyncResult:
    account_id: str
    streams: dict[str, StreamResult] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(r.error is None for r in self.streams.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "ok": self.ok,
            "streams": [r.to_dict() for r in self.streams.values()],
        }


class _Writer:
    """Serialises commits to one warehouse and keeps them off the event loop."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        self._lock = asyncio.Lock()

    async def commit(self, batch: Batch) -> None:
        async with self._lock:
            await asyncio.to_thread(self.warehouse.commit, batch)

    async def load_state(self, account_id: str, stream: str) -> dict[str, dict[str, Any]]:
        async with self._lock:
            return await asyncio.to_thread(self.warehouse.load_state, account_id, stream)

    @property
    def loads_pages(self) -> bool:
        return self.warehouse.capabilities.page_rows and hasattr(self.warehouse, "load_pages")

    async def page_info(self, page: PageRows) -> PageInfo:
        loader: PageLoader = self.warehouse  # type: ignore[assignment]
        async with self._lock:
            return await asyncio.to_thread(loader.page_info, page)

    async def load_pages(
        self, account_id: str, pages: Sequence[PageRows], state: Sequence[StateUpdate]
    ) -> int:
        loader: PageLoader = self.warehouse  # type: ignore[assignment]
        async with self._lock:
            return await asyncio.to_thread(loader.load_pages, account_id, pages, state)


@dataclass(slots=True)
class _Ctx:
    client: AsyncClient
    writer: _Writer
    account_id: str
    options: SyncOptions
    clock: Clock
    on_progress: ProgressCallback | None
    #: the get_accounts page read to learn the account id (accounts is 1/s: not read twice)
    accounts_page: Document | None = None
    on_report: ReportProgressCallback | None = None
    on_stream_done: StreamDoneCallback | None = None


class ClientSource(Protocol):
    """Anything that makes a client, e.g. a saved connection's credentials
    (:class:`kbridge.connections.ConnectionCredentials`)."""

    def client(self, **kwargs: Any) -> AsyncClient: ...


@SYNC.runs
async def run(
    client: AsyncClient | ClientSource,
    destination: Warehouse | str,
    *,
    streams: str | list[str] | tuple[str, ...] | None = None,
    start_date: datetime | None = None,
    full_refresh: bool = False,
    reconcile: bool = False,
    predictive_analytics: bool = False,
    lookback: timedelta | Mapping[str, timedelta] | None = None,
    on_progress: ProgressCallback | None = None,
    clock: Clock | None = None,
    on_report_progress: ReportProgressCallback | None = None,
    on_stream_done: StreamDoneCallback | None = None,
) -> SyncResult:
    """Sync ``streams`` (default: all) of the client's account into ``destination``.

    ``client`` is an :class:`~kbridge.api.AsyncClient` (left open) or a connection
    with a ``client()`` method (its client is opened and closed here).

    ``destination`` is a :class:`~kbridge.warehouse.Warehouse` or a URL
    (``duckdb:///file.duckdb``, ``postgresql://…``). Returns per-stream results;
    raises :class:`SyncError` (carrying them) when any stream failed — what was
    committed before the failure stays, and the next run resumes from it.

    ``lookback`` overrides how far behind its bookmark each incremental stream
    reads again (default: events and flow reports 7 days, campaign reports 2,
    ``updated``-based streams 1), for all streams or by stream name; re-read
    records are upserted, not doubled.

    ``on_progress(stream, n)`` hears of every ``n`` records committed;
    ``on_stream_done(result)`` of each stream's end, as it happens.
    ``on_report_progress`` hears where each report stream's backfill stands (days read
    of the range, time left) once it is planned and after every request.
    """
    selected = select_streams(streams)
    if not selected:
        raise ConfigurationError("streams: nothing selected")
    options = SyncOptions(
        start_date=None if start_date is None else utc(start_date),
        full_refresh=full_refresh,
        reconcile=reconcile,
        predictive_analytics=predictive_analytics,
        lookback=_check_lookback(lookback),
    )
    if not isinstance(client, AsyncClient):
        async with client.client() as made:
            return await run(
                made,
                destination,
                streams=[s.name for s in selected],
                start_date=start_date,
                full_refresh=full_refresh,
                reconcile=reconcile,
                predictive_analytics=predictive_analytics,
                lookback=lookback,
                on_progress=on_progress,
                clock=clock,
                on_report_progress=on_report_progress,
                on_stream_done=on_stream_done,
            )
    owned = isinstance(destination, str)
    warehouse = (
        open_warehouse(destination, memory_limit=DUCKDB_MEMORY_LIMIT, threads=DUCKDB_THREADS)
        if isinstance(destination, str)
        else destination
    )
    try:
        with _fewer_collections():
            return await _run(
                client,
                warehouse,
                selected,
                options,
                on_progress,
                clock,
                on_report=on_report_progress,
                on_stream_done=on_stream_done,
            )
    finally:
        if owned:
            warehouse.close()


#: the collector's first-generation threshold while a sync runs (CPython's default: 700)
GC_GEN0_THRESHOLD = 50_000
_gc_users = 0
_gc_saved: tuple[int, ...] | None = None


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Collect garbage less often while syncs run.

    A page of 1,000 events decodes to ~10,000 containers that live until the page is
    committed, so at CPython's default threshold the collector runs every few dozen
    records and, as the survivors are promoted, keeps rescanning everything that lives
    (about a third of an events sync's CPU). The sync creates no reference cycles that
    hold pages, so collecting less often costs no memory. Never lowers a threshold the
    application set; restored when the last concurrent run ends.
    """
    global _gc_users, _gc_saved
    if _gc_users == 0:
        current = gc.get_threshold()
        _gc_saved = current if current[0] < GC_GEN0_THRESHOLD else None
        if _gc_saved is not None:
            gc.set_threshold(GC_GEN0_THRESHOLD, *current[1:])
    _gc_users += 1
    try:
        yield
    finally:
        _gc_users -= 1
        if _gc_users == 0 and _gc_saved is not None:
            gc.set_threshold(*_gc_saved)
            _gc_saved = None


def _check_lookback(
    lookback: timedelta | Mapping[str, timedelta] | None,
) -> timedelta | Mapping[str, timedelta] | None:
    values = [lookback] if isinstance(lookback, timedelta) else list((lookback or {}).values())
    if any(not isinstance(v, timedelta) or v < timedelta(0) for v in values):
        raise ConfigurationError("lookback: give a non-negative timedelta (e.g. 7 days)")
    if isinstance(lookback, Mapping):
        select_streams(list(lookback))  # an unknown stream name is a clear error
    return lookback


async def _run(
    client: AsyncClient,
    warehouse: Warehouse,
    selected: tuple[Stream, ...],
    options: SyncOptions,
    on_progress: ProgressCallback | None,
    clock: Clock | None,
    on_report: ReportProgressCallback | None = None,
    on_stream_done: StreamDoneCallback | None = None,
) -> SyncResult:
    await asyncio.to_thread(warehouse.migrate, [t for s in selected for t in s.tables])
    accounts = await client.get_document("get_accounts")
    account = accounts.first
    if account is None or not account.id:
        raise ConfigurationError("the API key's account could not be read (get_accounts empty)")
    writer = _Writer(warehouse)
    ctx = _Ctx(
        client,
        writer,
        account.id,
        options,
        clock or SystemClock(),
        on_progress,
        accounts,
        on_report=on_report,
        on_stream_done=on_stream_done,
    )
    result = SyncResult(
        account.id,
        {s.name: _result(client, s) for s in selected},
    )
    release = await _lock_streams(warehouse, account.id, selected)
    try:
        await asyncio.gather(*(_run_stream(ctx, s, result.streams[s.name]) for s in selected))
    finally:
        await asyncio.to_thread(release)
    failed = [r for r in result.streams.values() if r.error]
    if failed:
        detail = "; ".join(f"{r.stream}: {r.error}" for r in failed)
        raise SyncError(f"{len(failed)} stream(s) failed (run again to resume): {detail}", result)
    return result


#: (warehouse, account, stream) of every run in this process, for warehouses that cannot
#: lock across processes themselves (DuckDB: its file lock already admits one process)
_HELD: set[tuple[int, str, str]] = set()
_HELD_LOCK = threading.Lock()


async def _lock_streams(
    warehouse: Warehouse, account_id: str, selected: Sequence[Stream]
) -> Callable[[], None]:
    """Claim this run's streams: two runs of one stream into one warehouse would each
    sweep away the membership rows the other wrote, and interleave bookmarks. Raises
    DestinationBusyError (one line) when another run holds any of them."""
    names = sorted({s.name for s in selected})
    if isinstance(warehouse, StreamLocker):  # across processes (PostgreSQL)
        return await asyncio.to_thread(warehouse.lock_streams, account_id, names)
    keys = {(id(warehouse), account_id, name) for name in names}
    with _HELD_LOCK:
        busy = sorted(name for _, _, name in keys & _HELD)
        if busy:
            raise DestinationBusyError(account_id, busy)
        _HELD.update(keys)

    def release() -> None:
        with _HELD_LOCK:
            _HELD.difference_update(keys)

    return release


def _result(client: AsyncClient, stream: Stream) -> StreamResult:
    """An empty result that knows the pace the client keeps ``stream`` to."""
    pace = client.rate_limiter.pace(catalog.get(stream.operation_id), stream.params)
    if pace is None:
        return StreamResult(stream.name)
    return StreamResult(stream.name, budget_rate=pace[0], budget_burst=pace[1])


async def _run_stream(ctx: _Ctx, stream: Stream, result: StreamResult) -> None:
    started = ctx.clock.monotonic()
    try:
        if stream.parent is not None:
            await _sync_children(ctx, stream, result)
        elif stream.slice_days is not None:
            await _sync_sliced(ctx, stream, result)
        elif stream.report is not None:
            await _sync_report(ctx, stream, result)
        elif stream.operation_id == "get_accounts" and ctx.accounts_page is not None:
            batch, n = _page_batch(ctx, stream, ctx.accounts_page, None)
            await _commit(ctx, stream, result, batch, n)
        else:
            states = await ctx.writer.load_state(ctx.account_id, stream.name)
            for partition in stream.partitions:
                await _sync_partition(ctx, stream, partition, states.get(partition.name), result)
        if ctx.options.reconcile and stream.id_field is not None:
            await _reconcile(ctx, stream)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        result.seconds = ctx.clock.monotonic() - started
        result.budget_allowed = ctx.client.rate_limiter.allowance(
            catalog.get(stream.operation_id), stream.params, result.seconds
        )
        if ctx.on_stream_done is not None:
            ctx.on_stream_done(result)


async def _all(coros: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """Run ``coros`` concurrently; the first failure cancels the rest and is raised as is
    (so no sibling keeps writing after its stream has been reported failed)."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(c) for c in coros]
    except BaseExceptionGroup as eg:
        first = eg.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None
    return [t.result() for t in tasks]


# -- one page -----------------------------------------------------------------------


def _page_batch(
    ctx: _Ctx, stream: Stream, page: Document, context: str | None, run: str | None = None
) -> tuple[Batch, int]:
    """The page's rows (and its children's) as a batch; the count of main records."""
    acct = ctx.account_id
    batch = Batch(acct)
    extract = stream.extract
    records = page.records
    if run is not None and RUN_COLUMN in stream.table.column_names:
        rows = [(acct, *extract(r, context), run) for r in records]
    else:
        rows = [(acct, *extract(r, context)) for r in records]
    batch.upsert(stream.table, rows)
    for child in stream.children:
        # small streams (campaigns, flows): resolving ``included`` through Resources is fine
        child_rows = [
            (acct, *child.extract(as_record(c), r.id))
            for r in page.resources
            for c in r.related(child.relationship)
            if c.attributes
        ]
        batch.upsert(child.table, child_rows)
    return batch, len(rows)


async def _commit(ctx: _Ctx, stream: Stream, result: StreamResult, batch: Batch, n: int) -> None:
    await ctx.writer.commit(batch)
    result.records += n
    result.pages += 1
    if ctx.on_progress is not None:
        ctx.on_progress(stream.name, n)


#: pages are merged into one transaction until they hold this many rows (or the last
#: page arrives): per-statement costs dominate small pages (profiles: 100 rows), and a
#: resume re-reads at most this many rows
FLUSH_ROWS = 5000
#: ...or once the first of them has waited this long, so a run killed early keeps what it
#: read (with the first page, which is committed at once)
FLUSH_SECONDS = 5.0


class _Pending:
    """Consecutive pages of one stream partition, merged into one commit.

    Rows of the same table become one upsert; deletions (a parent's sweep, sent with its
    last page) follow them; state updates keep their order (the last wins), so a flushed
    batch carries exactly the bookmark its rows justify. The first page is committed
    alone, at once: a run killed in its first seconds still saves progress.
    """

    def __init__(self, ctx: _Ctx, stream: Stream, result: StreamResult) -> None:
        self._ctx, self._stream, self._result = ctx, stream, result
        self._rows: dict[Table, list[tuple[Any, ...]]] = {}
        self._deletes: list[DeleteWhere | DeleteUnseen] = []
        self._state: list[StateUpdate] = []
        self._size = self._records = self._pages = 0
        self._flushed = False
        self._since = 0.0

    async def add(self, batch: Batch, records: int, *, last: bool) -> None:
        if not self._pages:
            self._since = self._ctx.clock.monotonic()
        for op in batch.operations:
            if isinstance(op, Upsert):
                self._rows.setdefault(op.table, []).extend(op.rows)
                self._size += len(op.rows)
            else:
                self._deletes.append(op)
        self._state.extend(batch.state)
        self._records += records
        self._pages += 1
        if (
            last
            or not self._flushed
            or self._size >= (self._stream.flush_rows or FLUSH_ROWS)
            or self._ctx.clock.monotonic() - self._since >= FLUSH_SECONDS
        ):
            await self.flush()

    async def flush(self) -> None:
        if not self._pages:
            return
        batch = Batch(self._ctx.account_id)
        for table, rows in self._rows.items():
            batch.upsert(table, rows)
        batch.operations.extend(self._deletes)
        batch.state.extend(self._state)
        await self._ctx.writer.commit(batch)
        self._flushed = True
        result = self._result
        result.records += self._records
        result.pages += self._pages
        if self._ctx.on_progress is not None:
            self._ctx.on_progress(self._stream.name, self._records)
        self._rows, self._deletes, self._state = {}, [], []
        self._size = self._records = self._pages = 0


def _params(ctx: _Ctx, stream: Stream, extra_filter: str | None) -> dict[str, Any]:
    params: dict[str, Any] = dict(stream.params)
    if stream.name == "profiles" and ctx.options.predictive_analytics:
        params["additional-fields[profile]"] = "subscriptions,predictive_analytics"
    if extra_filter:
        params["filter"] = extra_filter
    if stream.cursor is not None and stream.cursor.sort:
        params["sort"] = stream.cursor.sort
    return params


def _page_max(stream: Stream, page: Document) -> str | None:
    cursor = stream.cursor
    if cursor is None:
        return None
    attribute = cursor.attribute
    return max_cursor(
        a.get(attribute) for a in (r.get("attributes") for r in page.records) if isinstance(a, dict)
    )


# -- plain and partitioned streams ----------------------------------------------------------


async def _sync_partition(
    ctx: _Ctx,
    stream: Stream,
    partition: Partition,
    state: Mapping[str, Any] | None,
    result: StreamResult,
) -> None:
    """Pages in cursor order; each commit carries the bookmark its rows justify.

    Without a server-side sort the bookmark can only move once every page is in,
    so it is committed with the last page (a crash re-reads from the old one).
    """
    cursor = stream.cursor
    since = resume_from(
        state,
        ctx.options.start_date if stream.facts else None,  # dimensions sync whole
        full_refresh=ctx.options.full_refresh,
        lookback=ctx.options.lookback_for(stream),
    )
    filt = join_filters(
        [partition.filter, cursor_filter(cursor, since) if cursor is not None else None]
    )
    running = None if ctx.options.full_refresh or not state else state.get("bookmark")
    if stream.from_json is not None and cursor is not None and ctx.writer.loads_pages:
        sorted_pages = bool(cursor.sort)

        def commit_state(bookmark: str | None, last: bool) -> list[StateUpdate]:
            if not (sorted_pages or last):
                return []  # unsorted: the bookmark moves only once every page is in
            return [StateUpdate(stream.name, partition.name, {"bookmark": bookmark})]

        params = _params(ctx, stream, filt)
        context = partition.name or None
        await _pages_in_database(ctx, stream, params, context, running, result, commit_state)
        return
    pages = ctx.client.iter_pages(stream.operation_id, params=_params(ctx, stream, filt))
    pending = _Pending(ctx, stream, result)
    async for page in pages:
        batch, n = _page_batch(ctx, stream, page, partition.name or None)
        last = page.next_url is None
        if cursor is not None:
            running = advance(running, _page_max(stream, page))
            if cursor.sort or last:
                batch.set_state(stream.name, partition.name, {"bookmark": running})
        await pending.add(batch, n, last=last)


# -- events: time slices ----------------------------------------------------------------


async def _first_cursor(ctx: _Ctx, stream: Stream, since: str | None) -> str | None:
    """The earliest cursor value at or after ``since`` (one request), to skip empty years."""
    assert stream.cursor is not None
    params = _params(ctx, stream, cursor_filter(stream.cursor, since))
    params["page[size]"] = 1
    doc = await ctx.client.get_document(stream.operation_id, params=params)
    return _page_max(stream, doc)


async def _sync_sliced(ctx: _Ctx, stream: Stream, result: StreamResult) -> None:
    """Split ``[bookmark, now)`` into aligned windows fetched concurrently.

    The plan's lower bound is committed first (partition ``plan``), so a resumed run
    plans the same windows. Each window keeps its own bookmark (partition
    ``slice:<start>``) committed with every page, and a ``done`` flag with its last;
    when all are done, the stream's bookmark moves to the latest record seen and the
    plan and window states are cleared, in one transaction.
    """
    assert stream.cursor is not None
    assert stream.slice_days is not None
    states = await ctx.writer.load_state(ctx.account_id, stream.name)
    opts = ctx.options
    if opts.full_refresh:
        states = {}
    overall = states.get("")
    since = resume_from(
        overall, opts.start_date, full_refresh=opts.full_refresh, lookback=opts.lookback_for(stream)
    )
    # whole seconds (filters carry no fractions), rounded up so nothing up to now is cut off
    now = ctx.clock.now()
    upper = now.replace(microsecond=0) + timedelta(seconds=1 if now.microsecond else 0)
    lower = parse_ts(since) if since else EPOCH_FLOOR
    plan = states.get("plan")
    if plan and plan.get("lower"):
        # resuming: plan exactly the interrupted run's windows (their bookmarks are kept)
        lower = parse_ts(str(plan["lower"]))
    else:
        first = await _first_cursor(ctx, stream, since)
        if first is None:
            return
        lower = parse_ts(format_ts(max(lower, parse_ts(first))))
        # the plan is committed before any window, so a crash can never lose a window
        plan_batch = Batch(ctx.account_id)
        plan_batch.set_state(stream.name, "plan", {"lower": format_ts(lower)})
        await ctx.writer.commit(plan_batch)
    # at least one window: the last is open-ended (events can be dated ahead of now)
    windows = plan_windows(lower, max(upper, lower + timedelta(seconds=1)), stream.slice_days)
    gate = asyncio.Semaphore(max(1, opts.slice_concurrency))

    async def one(window: Window) -> str | None:
        async with gate:
            last = window is windows[-1]
            return await _sync_window(ctx, stream, window, states.get(window.name), result, last)

    seen = await _all(one(w) for w in windows)
    final = advance(overall.get("bookmark") if overall and not opts.full_refresh else None, None)
    for value in seen:
        final = advance(final, value)
    # never past this run's start: records dated ahead of it (read by the open last window)
    # are read again next run, not skipped over with the time before them
    if final is not None and parse_ts(final) > upper:
        final = format_ts(upper)
    batch = Batch(ctx.account_id)
    stale = {k for k in states if k.startswith("slice:")} | {w.name for w in windows} | {"plan"}
    for name in sorted(stale):
        batch.set_state(stream.name, name, None)
    batch.set_state(stream.name, "", {"bookmark": final or since})
    await ctx.writer.commit(batch)


async def _sync_window(
    ctx: _Ctx,
    stream: Stream,
    window: Window,
    state: Mapping[str, Any] | None,
    result: StreamResult,
    last: bool = False,
) -> str | None:
    """One window's records; the ``last`` has no end: whatever is dated from its start on,
    ahead of now included (an event sent with a future time is served by the API too)."""
    assert stream.cursor is not None
    if state and state.get("done"):
        return _opt_str(state.get("bookmark"))
    running = _opt_str(state.get("bookmark")) if state else None
    since = running or format_ts(window.start)
    filt = cursor_filter(stream.cursor, since, None if last else format_ts(window.end))
    if stream.from_json is not None and ctx.writer.loads_pages:
        return await _sync_window_in_database(ctx, stream, window, filt, running, result)
    pages = ctx.client.iter_pages(stream.operation_id, params=_params(ctx, stream, filt))
    pending = _Pending(ctx, stream, result)
    async for page in pages:
        batch, n = _page_batch(ctx, stream, page, None)
        running = advance(running, _page_max(stream, page))
        done = page.next_url is None
        batch.set_state(stream.name, window.name, {"bookmark": running, "done": done})
        await pending.add(batch, n, last=done)
    return running


#: pages of rows the database reads itself, merged into one commit per window (20 × 1,000
#: events, ~20 MB of bodies held by each of the windows read at once): each DuckDB commit
#: costs more as the table's key index grows, so fewer, larger ones pay (10,000 rows:
#: ≈ 23 µs an event; 20,000: ≈ 19). Windows sharing commits held less (≈ 40 MB less at
#: the peak) but cost ≈ 3 µs an event more: their commits came smaller. A resume re-reads
#: at most this many rows of a window.
IN_DATABASE_ROWS = 20_000
#: ...or once the first of them has waited this long: at a paced rate 20,000 profiles are
#: 16 s of requests (5 min at a twentieth of the limits), and progress and a resume's
#: starting point should not lag that far behind
IN_DATABASE_SECONDS = 5.0


async def _sync_window_in_database(
    ctx: _Ctx,
    stream: Stream,
    window: Window,
    filt: str | None,
    running: str | None,
    result: StreamResult,
) -> str | None:
    """:func:`_sync_window` for a warehouse that reads page bodies into rows itself."""

    def state(bookmark: str | None, done: bool) -> list[StateUpdate]:
        return [StateUpdate(stream.name, window.name, {"bookmark": bookmark, "done": done})]

    params = _params(ctx, stream, filt)
    return await _pages_in_database(ctx, stream, params, None, running, result, state)


async def _pages_in_database(
    ctx: _Ctx,
    stream: Stream,
    params: Mapping[str, Any],
    context: str | None,
    running: str | None,
    result: StreamResult,
    state: Callable[[str | None, bool], list[StateUpdate]],
) -> str | None:
    """Pages in cursor order, their rows read out of the bodies by the database.

    Each page's ``links.next`` is read from the end of its body (:func:`next_link`);
    the bodies wait (about 20 MB) until they hold ``IN_DATABASE_ROWS`` rows, or the
    first has waited ``IN_DATABASE_SECONDS``, then go in one transaction with
    ``state(bookmark, last page?)``, the bookmark being the
    latest cursor the database finds in them (in the last page alone: pages come
    sorted by the cursor). Pages the database cannot read (an odd shape) are decoded
    and extracted in Python instead, the usual way. Returns the bookmark.
    """
    cursor = stream.cursor
    assert cursor is not None
    assert stream.from_json is not None
    op_id, client, columns = stream.operation_id, ctx.client, stream.from_json
    cursor_path = ("attributes", cursor.attribute)
    is_sorted = cursor.sort == cursor.attribute
    page_size = catalog.get(op_id).max_page_size or 1
    per_commit = max(1, IN_DATABASE_ROWS // page_size)
    pending: list[PageRows] = []
    url: str | None = None
    seen: set[str] = set()
    clock = ctx.clock
    since = clock.monotonic()

    async def latest(page: PageRows) -> str | None:
        try:
            found = (await ctx.writer.page_info(page)).latest
            return None if found is None else format_ts(found)
        except PageShapeError:
            return _page_max(stream, client.decode_page(page.body, op_id))

    async def flush(bookmark: str | None, done: bool) -> str | None:
        for page in pending[-1:] if is_sorted else pending:
            bookmark = advance(bookmark, await latest(page))
        update = state(bookmark, done)
        try:
            n = await ctx.writer.load_pages(ctx.account_id, pending, update)
        except PageShapeError:
            batch, n = Batch(ctx.account_id), 0
            for p in pending:
                doc = client.decode_page(p.body, op_id)
                rows, count = _page_batch(ctx, stream, doc, context)
                batch.operations += rows.operations
                n += count
            batch.state += update
            await ctx.writer.commit(batch)
        result.records += n
        result.pages += len(pending)
        pending.clear()
        if ctx.on_progress is not None:
            ctx.on_progress(stream.name, n)
        return bookmark

    while True:
        body = await client.get_page_bytes(op_id, params=params, url=url)
        try:
            next_url = next_link(body)
        except JSONDecodeError:
            next_url = client.decode_page(body, op_id).next_url  # raises: not JSON
        if not pending:
            since = clock.monotonic()
        pending.append(PageRows(stream.table, body, columns, cursor_path, is_sorted))
        waited = clock.monotonic() - since
        if (
            next_url is None
            or not result.pages  # the stream's first page at once: an early kill keeps it
            or len(pending) >= per_commit
            or waited >= IN_DATABASE_SECONDS
        ):
            running = await flush(running, next_url is None)
        if next_url is None:
            return running
        remember_next(seen, next_url, op_id)
        url = next_url


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


# -- memberships and other per-parent streams -----------------------------------------------


async def _parent_ids(ctx: _Ctx, stream: Stream) -> AsyncIterator[str]:
    assert stream.parent is not None
    parent = stream.parent
    async for page in ctx.client.iter_pages(parent.operation_id, params=dict(parent.params)):
        if parent.included_type is None:
            ids: Iterable[str | None] = (r.id for r in page.resources)
        else:
            ids = (r.id for r in page.included if r.type == parent.included_type)
        for pid in ids:
            if pid:
                yield pid


#: state partition of one parent: when this stream last read it in full
_READ = "read:"


async def _sync_children(ctx: _Ctx, stream: Stream, result: StreamResult) -> None:
    """Every parent read in full, each exact as of its read; progress survives kills.

    Rows carry the run that wrote them. A parent's last rows, the sweep of its rows
    from earlier runs (members who left) and its read mark (partition ``read:<id>``)
    share one commit, so each parent is exact as soon as it is read, whatever happens
    to the run later. A run never trusts a parent read by an earlier, interrupted run
    (the account may have changed since: resuming that way ended with members missing
    and others extra), but reads first the parents never read, then those read longest
    ago, so repeated early kills still cover every parent. Once all are read, rows of
    parents that no longer exist are swept as the run is recorded complete.
    """
    states = await ctx.writer.load_state(ctx.account_id, stream.name)
    read_at = {
        k.removeprefix(_READ): str(v.get("at") or "")
        for k, v in states.items()
        if k.startswith(_READ)
    }
    run = uuid.uuid4().hex
    listed = [pid async for pid in _parent_ids(ctx, stream)]
    parents = sorted(dict.fromkeys(listed), key=lambda p: (p in read_at, read_at.get(p, "")))
    sweeps = RUN_COLUMN in stream.table.column_names
    # the tables that sweep are memberships, keyed (account_id, parent, profile)
    parent_column = stream.table.primary_key[1] if sweeps else ""
    gate = asyncio.Semaphore(_PARENT_CONCURRENCY)

    async def one(pid: str) -> None:
        async with gate:
            pages = ctx.client.iter_pages(
                stream.operation_id, path_params={"id": pid}, params=dict(stream.params)
            )
            pending = _Pending(ctx, stream, result)
            async for page in pages:
                batch, n = _page_batch(ctx, stream, page, pid, run)
                last = page.next_url is None
                if last:
                    if sweeps:
                        left = DeleteWhere(
                            stream.table, equals={parent_column: pid}, not_equals={RUN_COLUMN: run}
                        )
                        batch.delete(left)
                    batch.set_state(stream.name, _READ + pid, {"at": format_ts(ctx.clock.now())})
                await pending.add(batch, n, last=last)

    await _all(one(pid) for pid in parents)
    final = Batch(ctx.account_id)
    if sweeps:  # every parent listed now holds only this run's rows: the rest are gone
        final.delete(DeleteWhere(stream.table, not_equals={RUN_COLUMN: run}))
    for pid in sorted(set(read_at) - set(parents)):
        final.set_state(stream.name, _READ + pid, None)
    final.set_state(stream.name, "", {"last_run": run, "completed_at": format_ts(ctx.clock.now())})
    await ctx.writer.commit(final)


# -- reconcile -------------------------------------------------------------------------------


async def _reconcile(ctx: _Ctx, stream: Stream) -> None:
    """Id-only scan of everything Klaviyo still has; local rows not seen are deleted.

    Seen ids go to the warehouse (not memory), so the scan's footprint does not
    grow with the account.
    """
    run = uuid.uuid4().hex
    acct = ctx.account_id
    fields = {f"fields[{stream.resource_type}]": stream.id_field}
    for partition in stream.partitions:
        params: dict[str, Any] = dict(fields)
        if partition.filter:
            params["filter"] = partition.filter
        async for page in ctx.client.iter_pages(stream.operation_id, params=params):
            rows = [(acct, stream.name, run, r.id) for r in page.resources]
            await ctx.writer.commit(Batch(acct).upsert(SEEN_TABLE, rows))
    batch = Batch(acct)
    batch.delete(DeleteUnseen(stream.table, "id", stream.name, run))
    for child in stream.children:
        batch.delete(DeleteUnseen(child.table, child.parent_column, stream.name, run))
    batch.delete(DeleteWhere(SEEN_TABLE, equals={"scope": stream.name}))
    await ctx.writer.commit(batch)


# -- reports -----------------------------------------------------------------------------------

_DAY = timedelta(days=1)


def _midnight(dt: datetime) -> datetime:
    return dt.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


async def _conversion_metric(ctx: _Ctx) -> str | None:
    """The "Placed Order" metric (reports require a conversion metric); None if absent."""
    async for page in ctx.client.iter_pages("get_metrics", params={"fields[metric]": "name"}):
        for r in page.resources:
            if r.attributes.get("name") == "Placed Order":
                return r.id
    return None


def _report_days(
    ctx: _Ctx, report: Report, state: Mapping[str, Any] | None
) -> tuple[datetime, datetime]:
    """``[first, end)``: the complete UTC days not read yet, all of them (the daily cap,
    not a per-run length, decides how many this run reads)."""
    today = _midnight(ctx.clock.now())
    if state and state.get("bookmark") and not ctx.options.full_refresh:
        first = _midnight(parse_ts(str(state["bookmark"]))) + _DAY
    elif ctx.options.start_date is not None:
        first = _midnight(ctx.options.start_date)
    else:
        first = today - report.default_backfill_days * _DAY
    return first, today


def _report_reread(
    ctx: _Ctx, stream: Stream, state: Mapping[str, Any] | None, first: datetime
) -> datetime:
    """Where this run starts reading: the lookback's whole days before ``first`` (the first
    day not yet read) when the stream has a bookmark, never before the start date."""
    if not state or not state.get("bookmark") or ctx.options.full_refresh:
        return first
    days = -(-ctx.options.lookback_for(stream) // _DAY)  # whole days, rounded up
    again = first - days * _DAY
    if ctx.options.start_date is not None:
        again = max(again, _midnight(ctx.options.start_date))
    return min(again, first)


async def _sync_report(ctx: _Ctx, stream: Stream, result: StreamResult) -> None:
    """Day by day (values) or in ``days_per_request`` spans (series); each request's rows are
    committed with the bookmark "complete through this day".

    Every request asks for all campaigns/flows at once (``group_by``), so the cost is one
    request per day-aligned window. A run that has new days to read also reads again the
    lookback's days before them (a day's figures change when its events arrive late):
    after the new days, or in the same request when one span holds both. The bookmark
    never moves back. Reports have a daily cap (225): the run plans only as many requests
    as today's budget holds (new days first; the re-read only when both fit), and a cap
    met anyway (another integration spent it) ends the stream with a note, not an error;
    the next run resumes at the first missing day.
    """
    report = stream.report
    assert report is not None
    states = await ctx.writer.load_state(ctx.account_id, stream.name)
    day, end = _report_days(ctx, report, states.get(""))
    if day >= end:
        return
    first, wanted_end = day, end
    reached = day - _DAY  # the bookmark: complete through this day
    span = report.days_per_request * _DAY
    budget = ctx.client.rate_limiter.daily_budget(
        ctx.client.account, catalog.get(stream.operation_id)
    )
    wanted = -(-(end - day) // span)  # ceiling: the last request may be shorter
    if budget is not None and budget.remaining < wanted:
        if budget.remaining <= 0:
            result.note = _deferred(budget.resets_at, day)
            return
        end = day + budget.remaining * span
        result.note = (
            f"today's report budget allows {budget.remaining} of {wanted} requests; "
            f"days from {end.date().isoformat()} follow after "
            f"{budget.resets_at.isoformat(timespec='minutes')}"
        )
    windows = _report_windows(day, end, _report_reread(ctx, stream, states.get(""), day), span)
    if budget is not None and len(windows) > budget.remaining:
        windows = _report_windows(day, end, day, span)  # no room for the re-read
    metric = await _conversion_metric(ctx)
    if metric is None:
        return
    tell = _report_progress(ctx, stream, first, wanted_end, end, len(windows))
    tell(0, reached)
    for done, (start, stop) in enumerate(windows, 1):
        attributes: dict[str, Any] = {
            "statistics": list(REPORT_STATISTICS),
            "timeframe": {"start": format_ts(start), "end": format_ts(stop)},
            "conversion_metric_id": metric,
            "group_by": list(report.group_by),
        }
        if report.kind == "series":
            attributes["interval"] = "daily"
        body = {"data": {"type": report.object_type, "attributes": attributes}}
        try:
            doc = await ctx.client.get_document(stream.operation_id, json=body, idempotent=True)
        except QuotaExhaustedError as exc:
            result.note = _deferred(exc.resets_at, reached + _DAY)
            return
        found = doc.first.attributes if doc.first is not None else {}
        rows = _report_rows(ctx.account_id, report, found, start)
        batch = Batch(ctx.account_id).upsert(stream.table, rows)
        reached = max(reached, stop - _DAY)  # a re-read day leaves the bookmark where it was
        batch.set_state(stream.name, "", {"bookmark": format_ts(reached)})
        await _commit(ctx, stream, result, batch, len(rows))
        # a row's day (UTC for values, the account's timezone for series) as a date
        new_from = first.date().isoformat()
        result.reread += sum(1 for row in rows if str(row[1])[:10] < new_from)
        tell(done, reached)


def _report_progress(
    ctx: _Ctx, stream: Stream, first: datetime, wanted: datetime, planned: datetime, n: int
) -> Callable[[int, datetime], None]:
    """``tell(requests_done, bookmark)``: a :class:`ReportProgress` for the run's range
    ``[first, wanted)``, of which ``[first, planned)`` fit today's budget in ``n`` requests.

    The time left is the requests left at the pace the client keeps the operation to, or,
    unpaced, at the pace seen so far (both on the sync's clock).
    """
    callback = ctx.on_report
    pace = ctx.client.rate_limiter.pace(catalog.get(stream.operation_id))
    days, deferred = (wanted - first) // _DAY, (wanted - planned) // _DAY
    started = ctx.clock.monotonic()

    def tell(done: int, reached: datetime) -> None:
        if callback is None:
            return
        left = n - done
        if pace is not None:
            seconds: float | None = left / pace[0]
        elif done:
            seconds = (ctx.clock.monotonic() - started) / done * left
        else:
            seconds = None
        day = max(0, (reached + _DAY - first) // _DAY)
        callback(ReportProgress(stream.name, day, days, left, seconds, deferred))

    return tell


def _report_windows(
    first: datetime, end: datetime, again: datetime, span: timedelta
) -> list[tuple[datetime, datetime]]:
    """The ``[start, stop)`` requests for new days ``[first, end)`` and re-read days
    ``[again, first)``: one request when a span holds both, else the new days first."""
    if end - again <= span:
        return [(again, end)]

    def spans(day: datetime, stop: datetime) -> list[tuple[datetime, datetime]]:
        return [(d, min(d + span, stop)) for d in _days(day, stop, span)]

    return spans(first, end) + spans(again, first)


def _days(day: datetime, stop: datetime, step: timedelta) -> Iterator[datetime]:
    while day < stop:
        yield day
        day += step


def _deferred(resets_at: datetime, day: datetime) -> str:
    return (
        f"daily quota exhausted until {resets_at.isoformat(timespec='minutes')}; "
        f"the next run resumes at {day.date().isoformat()}"
    )


def _number(value: Any) -> float | None:
    """A statistic as a float; anything else (null, or a shape Klaviyo may add) is NULL here
    and kept as given in the row's raw statistics."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _count(value: Any) -> int | None:
    number = _number(value)
    return None if number is None or number != number else round(number)


def _stat_values(stats: Mapping[str, Any]) -> list[Any]:
    return [
        _number(stats.get(n)) if n == "conversion_value" else _count(stats.get(n))
        for n in REPORT_STATISTICS
    ]


def _report_rows(
    account_id: str, report: Report, attributes: Mapping[str, Any], day: datetime
) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for item in attributes.get("results") or ():
        groupings = item.get("groupings") or {}
        keys = [str(groupings.get(g) or "") for g in report.group_by]
        stats = item.get("statistics") or {}
        if report.kind == "values":
            rows.append((account_id, format_ts(day), *keys, *_stat_values(stats), dumps_str(stats)))
            continue
        for i, when in enumerate(attributes.get("date_times") or ()):
            point = {
                k: v[i] if isinstance(v, list) and i < len(v) else None for k, v in stats.items()
            }
            rows.append((account_id, str(when), *keys, *_stat_values(point), dumps_str(point)))
    return rows
