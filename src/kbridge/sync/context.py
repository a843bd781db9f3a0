"""What every strategy of a run shares: the client, the warehouse writer, the options."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from kbridge.api import AsyncClient, Document
from kbridge.core.clock import Clock
from kbridge.sync.options import SyncOptions
from kbridge.sync.records import StreamState
from kbridge.sync.results import StreamResult
from kbridge.sync.streams import Stream
from kbridge.warehouse import Batch, PageInfo, PageLoader, PageRows, StateUpdate, Warehouse

__all__ = ["Context", "Writer", "all_or_first_error"]

T = TypeVar("T")


class Writer:
    """Serialises commits to one warehouse and keeps them off the event loop."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        self._lock = asyncio.Lock()

    async def commit(self, batch: Batch) -> None:
        async with self._lock:
            await asyncio.to_thread(self.warehouse.commit, batch)

    async def load_state(self, account_id: str, stream: str) -> StreamState:
        async with self._lock:
            rows = await asyncio.to_thread(self.warehouse.load_state, account_id, stream)
        return StreamState(stream, rows)

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
class Context:
    client: AsyncClient
    writer: Writer
    account_id: str
    options: SyncOptions
    clock: Clock
    #: the get_accounts page read to learn the account id (accounts is 1/s: not read twice)
    accounts_page: Document | None = None

    def progress(self, stream: Stream, result: StreamResult, records: int, pages: int) -> None:
        """Count a commit of ``records`` in ``pages`` and tell the listener."""
        result.records += records
        result.pages += pages
        on_progress = self.options.callbacks.on_progress
        if on_progress is not None:
            on_progress(stream.name, records)


async def all_or_first_error(coros: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
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
