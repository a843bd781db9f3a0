"""Memberships and other per-parent streams: every parent read in full, each exact."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable

from kbridge.sync.context import Context, all_or_first_error
from kbridge.sync.records import ChildrenRun, ParentRead, read_key
from kbridge.sync.results import StreamResult
from kbridge.sync.sinks import PageQuery, RowSink
from kbridge.sync.state import format_ts
from kbridge.sync.streams import RUN_COLUMN, Stream
from kbridge.warehouse import Batch, DeleteWhere, StateUpdate

__all__ = ["PARENT_CONCURRENCY", "Children"]

#: parents (lists, segments, flow actions) whose members are read at once; the limiter paces
PARENT_CONCURRENCY = 4


class Children:
    """Every parent read in full, each exact as of its read; progress survives kills.

    Rows carry the run that wrote them. A parent's last rows, the sweep of its rows
    from earlier runs (members who left) and its read mark (a :class:`ParentRead`)
    share one commit, so each parent is exact as soon as it is read, whatever happens
    to the run later. A run never trusts a parent read by an earlier, interrupted run
    (the account may have changed since: resuming that way ended with members missing
    and others extra), but reads first the parents never read, then those read longest
    ago, so repeated early kills still cover every parent. Once all are read, rows of
    parents that no longer exist are swept as the run is recorded complete.
    """

    async def sync(self, ctx: Context, stream: Stream, result: StreamResult) -> None:
        states = await ctx.writer.load_state(ctx.account_id, stream.name)
        read_at = {pid: mark.at for pid, mark in states.parents_read().items()}
        run = uuid.uuid4().hex
        listed = [pid async for pid in _parent_ids(ctx, stream)]
        parents = sorted(dict.fromkeys(listed), key=lambda p: (p in read_at, read_at.get(p, "")))
        sweeps = RUN_COLUMN in stream.table.column_names
        # the tables that sweep are memberships, keyed (account_id, parent, profile)
        parent_column = stream.table.primary_key[1] if sweeps else ""
        gate = asyncio.Semaphore(PARENT_CONCURRENCY)
        sink = RowSink(ctx, stream, result)

        async def one(pid: str) -> None:
            def state(_bookmark: str | None, last: bool) -> list[StateUpdate]:
                if not last:
                    return []
                mark = ParentRead(format_ts(ctx.clock.now()))
                return [states.update(read_key(pid), mark)]

            left = (
                [
                    DeleteWhere(
                        stream.table, equals={parent_column: pid}, not_equals={RUN_COLUMN: run}
                    )
                ]
                if sweeps
                else []
            )
            query = PageQuery(dict(stream.params), path_params={"id": pid}, context=pid)
            async with gate:
                await sink.drain(query, None, state, run=run, last_page=left)

        await all_or_first_error(one(pid) for pid in parents)
        final = Batch(ctx.account_id)
        if sweeps:  # every parent listed now holds only this run's rows: the rest are gone
            final.delete(DeleteWhere(stream.table, not_equals={RUN_COLUMN: run}))
        for pid in sorted(set(read_at) - set(parents)):
            final.state.append(states.update(read_key(pid), None))
        done = ChildrenRun(run, format_ts(ctx.clock.now()))
        final.state.append(states.update("", done))
        await ctx.writer.commit(final)


async def _parent_ids(ctx: Context, stream: Stream) -> AsyncIterator[str]:
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
