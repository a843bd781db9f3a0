"""Plain and partitioned streams: pages in cursor order from the bookmark on."""

from __future__ import annotations

from kbridge.sync.context import Context
from kbridge.sync.records import Bookmark
from kbridge.sync.results import StreamResult
from kbridge.sync.sinks import PageQuery, page_batch, sink_for
from kbridge.sync.state import cursor_filter, join_filters, resume_from
from kbridge.sync.strategies.base import query_params
from kbridge.sync.streams import Partition, Stream
from kbridge.warehouse import StateUpdate

__all__ = ["AccountPage", "Incremental"]


class Incremental:
    """Each partition from its bookmark (less the lookback); each commit carries the
    bookmark its rows justify.

    Without a server-side sort the bookmark can only move once every page is in, so it
    is committed with the last page (a crash re-reads from the old one). Streams without
    a cursor (small dimensions) are read whole every run.
    """

    async def sync(self, ctx: Context, stream: Stream, result: StreamResult) -> None:
        states = await ctx.writer.load_state(ctx.account_id, stream.name)
        for partition in stream.partitions:
            await self._partition(ctx, stream, partition, states.bookmark(partition.name), result)

    async def _partition(
        self,
        ctx: Context,
        stream: Stream,
        partition: Partition,
        mark: Bookmark | None,
        result: StreamResult,
    ) -> None:
        cursor, opts = stream.cursor, ctx.options
        since = resume_from(
            None if mark is None else mark.to_json(),
            opts.start_date if stream.facts else None,  # dimensions sync whole
            full_refresh=opts.full_refresh,
            lookback=opts.lookback_for(stream),
        )
        filt = join_filters(
            [partition.filter, cursor_filter(cursor, since) if cursor is not None else None]
        )
        running = None if opts.full_refresh or mark is None else mark.bookmark
        sorted_pages = cursor is not None and bool(cursor.sort)

        def state(bookmark: str | None, last: bool) -> list[StateUpdate]:
            if cursor is None or not (sorted_pages or last):
                return []  # unsorted: the bookmark moves only once every page is in
            return [StateUpdate(stream.name, partition.name, Bookmark(bookmark).to_json())]

        query = PageQuery(query_params(ctx, stream, filt), context=partition.name or None)
        await sink_for(ctx, stream, result).drain(query, running, state)


class AccountPage:
    """The account itself: the page the run already read to learn the account id."""

    async def sync(self, ctx: Context, stream: Stream, result: StreamResult) -> None:
        if ctx.accounts_page is None:
            await Incremental().sync(ctx, stream, result)
            return
        batch, n = page_batch(ctx, stream, ctx.accounts_page, None)
        await ctx.writer.commit(batch)
        ctx.progress(stream, result, n, 1)
