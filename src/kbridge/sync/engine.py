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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any, Protocol

from kbridge import catalog
from kbridge.api import AsyncClient, PermissionDeniedError
from kbridge.api.capabilities import SYNC
from kbridge.core.clock import SystemClock
from kbridge.core.errors import ConfigurationError
from kbridge.sync.context import Context, Writer
from kbridge.sync.errors import SyncError
from kbridge.sync.options import (
    Callbacks,
    ProgressCallback,
    ReportProgressCallback,
    StreamDoneCallback,
    SyncOptions,
)
from kbridge.sync.reconcile import reconcile
from kbridge.sync.results import StreamResult, SyncResult
from kbridge.sync.strategies import strategy_for
from kbridge.sync.streams import Stream
from kbridge.sync.windows import ReportProgress
from kbridge.warehouse import (
    DestinationBusyError,
    StreamLocker,
    Warehouse,
    open_warehouse,
)

__all__ = [
    "Callbacks",
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

#: DuckDB settings for a destination the sync opens from a URL (the URL's own
#: ``?memory_limit=…&threads=…`` win): a bounded buffer pool keeps the process's memory
#: flat as the account grows (the default, 80 % of RAM, keeps every page of the table),
#: and one page's upsert gains little from more than one thread
DUCKDB_MEMORY_LIMIT = "96MB"
DUCKDB_THREADS = 1

#: the keywords of the earlier ``run(client, destination, **keywords)`` form
_CALLBACK_KEYWORDS = ("on_progress", "on_report_progress", "on_stream_done")


class ClientSource(Protocol):
    """Anything that makes a client, e.g. a saved connection's credentials
    (:class:`kbridge.connections.ConnectionCredentials`)."""

    def client(self, **kwargs: Any) -> AsyncClient: ...


@SYNC.runs
async def run(
    client: AsyncClient | ClientSource,
    options: SyncOptions | Warehouse | str,
    /,
    **keywords: Any,
) -> SyncResult:
    """Sync the client's account as ``options`` say (:class:`SyncOptions`).

    ``client`` is an :class:`~kbridge.api.AsyncClient` (left open) or a connection
    with a ``client()`` method (its client is opened and closed here). Returns
    per-stream results; raises :class:`SyncError` (carrying them) when any stream
    failed — what was committed before the failure stays, and the next run resumes
    from it.

    ``run(client, destination, streams=…, on_progress=…)`` (a destination and the
    options' fields, the callbacks among them, as keywords) is the same as
    ``run(client, SyncOptions(destination, streams=…, callbacks=Callbacks(on_progress=…)))``.
    """
    if not isinstance(options, SyncOptions):
        callbacks = Callbacks(**{k: keywords.pop(k) for k in _CALLBACK_KEYWORDS if k in keywords})
        options = SyncOptions(options, callbacks=callbacks, **keywords)
    elif keywords:
        raise TypeError(f"run: give SyncOptions or keywords, not both ({', '.join(keywords)})")
    if not isinstance(client, AsyncClient):
        async with client.client() as made:
            return await run(made, options)
    destination = options.destination
    owned = isinstance(destination, str)
    warehouse = (
        open_warehouse(destination, memory_limit=DUCKDB_MEMORY_LIMIT, threads=DUCKDB_THREADS)
        if isinstance(destination, str)
        else destination
    )
    try:
        with fewer_collections() if options.fewer_collections else nullcontext():
            return await _run(client, warehouse, options)
    finally:
        if owned:
            warehouse.close()


#: the collector's first-generation threshold while a sync runs (CPython's default: 700)
GC_GEN0_THRESHOLD = 50_000
_gc_users = 0
_gc_saved: tuple[int, ...] | None = None


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Collect garbage less often while syncs run (``SyncOptions.fewer_collections``).

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


async def _run(client: AsyncClient, warehouse: Warehouse, options: SyncOptions) -> SyncResult:
    selected = options.selected
    await asyncio.to_thread(warehouse.migrate, [t for s in selected for t in s.tables])
    accounts = await client.get_document("get_accounts")
    account = accounts.first
    if account is None or not account.id:
        raise ConfigurationError("the API key's account could not be read (get_accounts empty)")
    ctx = Context(
        client,
        Writer(warehouse),
        account.id,
        options,
        options.clock or SystemClock(),
        accounts,
    )
    result = SyncResult(account.id, {s.name: _result(client, s) for s in selected})
    release = await _lock_streams(warehouse, account.id, selected)
    try:
        await asyncio.gather(*(_run_stream(ctx, s, result.streams[s.name]) for s in selected))
    finally:
        await asyncio.to_thread(release)
    failed = [r for r in result.streams.values() if r.exception is not None]
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


async def _run_stream(ctx: Context, stream: Stream, result: StreamResult) -> None:
    started = ctx.clock.monotonic()
    try:
        await strategy_for(stream).sync(ctx, stream, result)
        if ctx.options.reconcile and stream.id_field is not None:
            await reconcile(ctx, stream)
    except PermissionDeniedError as exc:
        if ctx.options.streams is not None:  # asked for by name: the user must hear it fails
            result.exception = exc
        else:
            # every stream, not these: a key made for the streams of an earlier release (or
            # kept to least privilege on purpose) syncs what it may read, and is told the rest
            lacks = ", ".join(exc.required_scopes) or "a scope it needs"
            result.note = (
                f"left out: the key lacks {lacks} (grant it, or name the streams you want "
                "with --streams)"
            )
    except Exception as exc:
        result.exception = exc
    finally:
        result.seconds = ctx.clock.monotonic() - started
        result.budget_allowed = ctx.client.rate_limiter.allowance(
            catalog.get(stream.operation_id), stream.params, result.seconds
        )
        on_stream_done = ctx.options.callbacks.on_stream_done
        if on_stream_done is not None:
            on_stream_done(result)
