"""Reconcile: delete local rows of records Klaviyo no longer has."""

from __future__ import annotations

import uuid
from typing import Any

from kbridge.sync.context import Context
from kbridge.sync.streams import Stream
from kbridge.warehouse import SEEN_TABLE, Batch, DeleteUnseen, DeleteWhere

__all__ = ["reconcile"]


async def reconcile(ctx: Context, stream: Stream) -> None:
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
