"""Where a query's pages go: one :class:`PageSink` interface, two implementations.

:class:`RowSink` decodes each page and extracts its rows in Python; :class:`JsonSink`
hands the page bodies to a warehouse that reads rows out of JSON itself (DuckDB's
``read_json``: a decoded events page is ~10,000 Python objects built only to be taken
apart). Both commit every few pages in one transaction with the state their rows
justify, as a strategy's ``state(bookmark, last_page)`` says, and return the bookmark
they reached; :func:`sink_for` picks one for a stream and a warehouse.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from kbridge import catalog
from kbridge.api import Document
from kbridge.api.jsonapi import next_link
from kbridge.api.pagination import remember_next
from kbridge.core.jsoncodec import JSONDecodeError
from kbridge.sync.context import Context
from kbridge.sync.results import StreamResult
from kbridge.sync.state import advance, format_ts, max_cursor
from kbridge.sync.streams import RUN_COLUMN, Stream, as_record
from kbridge.warehouse import (
    Batch,
    DeleteUnseen,
    DeleteWhere,
    PageRows,
    PageShapeError,
    StateUpdate,
    Table,
    Upsert,
)

__all__ = [
    "FLUSH_ROWS",
    "FLUSH_SECONDS",
    "IN_DATABASE_ROWS",
    "IN_DATABASE_SECONDS",
    "JsonSink",
    "PageQuery",
    "PageSink",
    "Pending",
    "RowSink",
    "StateFor",
    "page_batch",
    "page_max",
    "sink_for",
]

#: ``state(bookmark, last_page)``: the state updates a commit carries
StateFor = Callable[[str | None, bool], list[StateUpdate]]

#: pages are merged into one transaction until they hold this many rows (or the last
#: page arrives): per-statement costs dominate small pages (profiles: 100 rows), and a
#: resume re-reads at most this many rows
FLUSH_ROWS = 5000
#: ...or once the first of them has waited this long, so a run killed early keeps what it
#: read (with the first page, which is committed at once)
FLUSH_SECONDS = 5.0
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


@dataclass(frozen=True, slots=True)
class PageQuery:
    """One paginated listing: the stream's operation with these parameters."""

    params: Mapping[str, Any]
    path_params: Mapping[str, str] = field(default_factory=dict)
    #: what the extractor is told beside each record (a partition's or parent's name)
    context: str | None = None


class PageSink(Protocol):
    async def drain(self, query: PageQuery, running: str | None, state: StateFor) -> str | None:
        """Every page of ``query`` committed, each commit with ``state(bookmark, last)``;
        returns the bookmark reached from ``running``."""
        ...


def sink_for(ctx: Context, stream: Stream, result: StreamResult) -> PageSink:
    """In the database when the stream allows it and the warehouse can, else in Python."""
    if stream.from_json is not None and stream.cursor is not None and ctx.writer.loads_pages:
        return JsonSink(ctx, stream, result)
    return RowSink(ctx, stream, result)


def page_batch(
    ctx: Context, stream: Stream, page: Document, context: str | None, run: str | None = None
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


def page_max(stream: Stream, page: Document) -> str | None:
    """The latest cursor value among the page's records (None: the stream has no cursor)."""
    cursor = stream.cursor
    if cursor is None:
        return None
    attribute = cursor.attribute
    return max_cursor(
        a.get(attribute) for a in (r.get("attributes") for r in page.records) if isinstance(a, dict)
    )


class Pending:
    """Consecutive pages of one stream partition, merged into one commit.

    Rows of the same table become one upsert; deletions (a parent's sweep, sent with its
    last page) follow them; state updates keep their order (the last wins), so a flushed
    batch carries exactly the bookmark its rows justify. The first page is committed
    alone, at once: a run killed in its first seconds still saves progress.
    """

    def __init__(self, ctx: Context, stream: Stream, result: StreamResult) -> None:
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
        self._ctx.progress(self._stream, self._result, self._records, self._pages)
        self._rows, self._deletes, self._state = {}, [], []
        self._size = self._records = self._pages = 0


class RowSink:
    """Pages decoded and extracted in Python, merged by :class:`Pending`."""

    def __init__(self, ctx: Context, stream: Stream, result: StreamResult) -> None:
        self._ctx, self._stream, self._result = ctx, stream, result

    async def drain(
        self,
        query: PageQuery,
        running: str | None,
        state: StateFor,
        *,
        run: str | None = None,
        last_page: Sequence[DeleteWhere] = (),
    ) -> str | None:
        """``run`` tags rows of tables that carry it; ``last_page`` goes with the last page."""
        ctx, stream = self._ctx, self._stream
        pages = ctx.client.iter_pages(
            stream.operation_id, path_params=dict(query.path_params), params=dict(query.params)
        )
        pending = Pending(ctx, stream, self._result)
        async for page in pages:
            batch, n = page_batch(ctx, stream, page, query.context, run)
            last = page.next_url is None
            if stream.cursor is not None:
                running = advance(running, page_max(stream, page))
            if last:
                for op in last_page:
                    batch.delete(op)
            batch.state.extend(state(running, last))
            await pending.add(batch, n, last=last)
        return running


class JsonSink:
    """Pages in cursor order, their rows read out of the bodies by the database.

    Each page's ``links.next`` is read from the end of its body (:func:`next_link`);
    the bodies wait (about 20 MB) until they hold ``IN_DATABASE_ROWS`` rows, or the
    first has waited ``IN_DATABASE_SECONDS``, then go in one transaction with
    ``state(bookmark, last page?)``, the bookmark being the latest cursor the database
    finds in them (in the last page alone: pages come sorted by the cursor). Pages the
    database cannot read (an odd shape) are decoded and extracted in Python instead.
    """

    def __init__(self, ctx: Context, stream: Stream, result: StreamResult) -> None:
        assert stream.cursor is not None
        assert stream.from_json is not None
        self._ctx, self._stream, self._result = ctx, stream, result

    async def drain(self, query: PageQuery, running: str | None, state: StateFor) -> str | None:
        ctx, stream, result = self._ctx, self._stream, self._result
        cursor, columns = stream.cursor, stream.from_json
        assert cursor is not None
        assert columns is not None
        op_id, client, params = stream.operation_id, ctx.client, query.params
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
                return page_max(stream, client.decode_page(page.body, op_id))

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
                    rows, count = page_batch(ctx, stream, doc, query.context)
                    batch.operations += rows.operations
                    n += count
                batch.state += update
                await ctx.writer.commit(batch)
            pages = len(pending)
            pending.clear()
            ctx.progress(stream, result, n, pages)
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
