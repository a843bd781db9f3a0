"""The frame every report section shares: its context, its declaration, and the
exception that turns into a "Not available" box."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from kbridge.analytics._sql import require_tables
from kbridge.analytics.errors import MissingTableError
from kbridge.report.html import unavailable
from kbridge.warehouse import Warehouse


class Unavailable(Exception):
    """The analysis has nothing to show for this warehouse; ``str()`` says why."""


@dataclass(frozen=True, slots=True)
class Context:
    warehouse: Warehouse
    account_id: str
    as_of: datetime | None
    currency: str


@dataclass(frozen=True, slots=True)
class Section:
    anchor: str
    title: str
    intro: str
    render: Callable[[Context], str]

    def html(self, ctx: Context) -> str:
        try:
            return self.render(ctx)
        except Unavailable as exc:
            return unavailable(str(exc))


def _synced(ctx: Context, *tables: str) -> None:
    """Raise :class:`Unavailable` unless the warehouse has ``tables``."""
    try:
        require_tables(ctx.warehouse, *tables)
    except MissingTableError as exc:
        raise Unavailable(str(exc)) from None
