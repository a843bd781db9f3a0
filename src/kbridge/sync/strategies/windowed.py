"""Events: the history split into aligned time windows, read concurrently."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from kbridge.sync.context import Context, all_or_first_error
from kbridge.sync.records import PLAN, Bookmark, SlicePlan, StreamState, WindowMark
from kbridge.sync.results import StreamResult
from kbridge.sync.sinks import PageQuery, page_max, sink_for
from kbridge.sync.state import (
    EPOCH_FLOOR,
    advance,
    cursor_filter,
    format_ts,
    parse_ts,
    resume_from,
)
from kbridge.sync.strategies.base import query_params
from kbridge.sync.streams import Stream
from kbridge.sync.windows import Window, plan_windows
from kbridge.warehouse import Batch, StateUpdate

__all__ = ["Windowed"]


class Windowed:
    """Split ``[bookmark, now)`` into aligned windows fetched concurrently.

    The plan's lower bound is committed first (a :class:`SlicePlan`), so a resumed run
    plans the same windows. Each window keeps its own :class:`WindowMark` committed with
    every page, ``done`` with its last; when all are done, the stream's bookmark moves
    to the latest record seen and the plan and window states are cleared, in one
    transaction.
    """

    async def sync(self, ctx: Context, stream: Stream, result: StreamResult) -> None:
        assert stream.cursor is not None
        assert stream.slice_days is not None
        opts = ctx.options
        states = await ctx.writer.load_state(ctx.account_id, stream.name)
        if opts.full_refresh:
            states = StreamState(stream.name, {})
        overall = states.bookmark()
        since = resume_from(
            None if overall is None else overall.to_json(),
            opts.start_date,
            full_refresh=opts.full_refresh,
            lookback=opts.lookback_for(stream),
        )
        # whole seconds (filters carry no fractions), rounded up so nothing up to now is cut off
        now = ctx.clock.now()
        upper = now.replace(microsecond=0) + timedelta(seconds=1 if now.microsecond else 0)
        lower = parse_ts(since) if since else EPOCH_FLOOR
        plan = states.plan()
        if plan is not None:
            # resuming: plan exactly the interrupted run's windows (their bookmarks are kept)
            lower = parse_ts(plan.lower)
        else:
            first = await _first_cursor(ctx, stream, since)
            if first is None:
                return
            lower = parse_ts(format_ts(max(lower, parse_ts(first))))
            # the plan is committed before any window, so a crash can never lose a window
            plan_batch = Batch(ctx.account_id)
            plan_batch.state.append(states.update(PLAN, SlicePlan(format_ts(lower))))
            await ctx.writer.commit(plan_batch)
        # at least one window: the last is open-ended (events can be dated ahead of now)
        windows = plan_windows(lower, max(upper, lower + timedelta(seconds=1)), stream.slice_days)
        gate = asyncio.Semaphore(max(1, opts.slice_concurrency))

        async def one(window: Window) -> str | None:
            async with gate:
                last = window is windows[-1]
                mark = states.window(window.name)
                return await _window(ctx, stream, window, mark, result, last)

        seen = await all_or_first_error(one(w) for w in windows)
        kept = overall.bookmark if overall is not None and not opts.full_refresh else None
        final = advance(kept, None)
        for value in seen:
            final = advance(final, value)
        # never past this run's start: records dated ahead of it (read by the open last
        # window) are read again next run, not skipped over with the time before them
        if final is not None and parse_ts(final) > upper:
            final = format_ts(upper)
        batch = Batch(ctx.account_id)
        stale = set(states.windows()) | {w.name for w in windows} | {PLAN}
        for name in sorted(stale):
            batch.state.append(states.update(name, None))
        batch.state.append(states.update("", Bookmark(final or since)))
        await ctx.writer.commit(batch)


async def _first_cursor(ctx: Context, stream: Stream, since: str | None) -> str | None:
    """The earliest cursor value at or after ``since`` (one request), to skip empty years."""
    assert stream.cursor is not None
    params = query_params(ctx, stream, cursor_filter(stream.cursor, since))
    params["page[size]"] = 1
    doc = await ctx.client.get_document(stream.operation_id, params=params)
    return page_max(stream, doc)


async def _window(
    ctx: Context,
    stream: Stream,
    window: Window,
    mark: WindowMark | None,
    result: StreamResult,
    last: bool = False,
) -> str | None:
    """One window's records; the ``last`` has no end: whatever is dated from its start on,
    ahead of now included (an event sent with a future time is served by the API too)."""
    assert stream.cursor is not None
    if mark is not None and mark.done:
        return mark.bookmark
    running = None if mark is None else mark.bookmark
    since = running or format_ts(window.start)
    filt = cursor_filter(stream.cursor, since, None if last else format_ts(window.end))

    def state(bookmark: str | None, done: bool) -> list[StateUpdate]:
        return [StateUpdate(stream.name, window.name, WindowMark(bookmark, done).to_json())]

    query = PageQuery(query_params(ctx, stream, filt))
    return await sink_for(ctx, stream, result).drain(query, running, state)
