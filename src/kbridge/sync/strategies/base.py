"""What a strategy is: how one kind of stream reads its pages and keeps its state."""

from __future__ import annotations

from typing import Any, Protocol

from kbridge.sync.context import Context
from kbridge.sync.results import StreamResult
from kbridge.sync.streams import Stream

__all__ = ["Strategy", "query_params"]


class Strategy(Protocol):
    """Syncs one stream: reads what is new since its state, commits rows with state."""

    async def sync(self, ctx: Context, stream: Stream, result: StreamResult) -> None: ...


def query_params(ctx: Context, stream: Stream, extra_filter: str | None) -> dict[str, Any]:
    """The stream's listing parameters for this run, with ``extra_filter`` and its sort."""
    params: dict[str, Any] = dict(stream.params)
    if ctx.options.predictive_analytics:
        params.update(stream.predictive_params)
    if extra_filter:
        params["filter"] = extra_filter
    if stream.cursor is not None and stream.cursor.sort:
        params["sort"] = stream.cursor.sort
    return params
