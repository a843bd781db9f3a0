"""How a sync runs: :class:`SyncOptions`, one frozen object instead of a dozen parameters."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from kbridge.core.clock import Clock, utc
from kbridge.core.errors import ConfigurationError
from kbridge.sync.streams import Stream, select_streams
from kbridge.sync.windows import ReportProgress

if TYPE_CHECKING:
    from kbridge.sync.results import StreamResult
    from kbridge.warehouse import Warehouse

__all__ = [
    "Callbacks",
    "ProgressCallback",
    "ReportProgressCallback",
    "StreamDoneCallback",
    "SyncOptions",
]

ProgressCallback = Callable[[str, int], None]
"""``callback(stream_name, records_just_committed)`` after every commit."""
#: hears of each stream's end (done or failed), e.g. to stop its spinner and timer
StreamDoneCallback = Callable[["StreamResult"], None]
ReportProgressCallback = Callable[[ReportProgress], None]
"""``callback(progress)`` once a report stream is planned and after each of its requests."""


@dataclass(frozen=True, slots=True)
class Callbacks:
    """Who hears of a run as it goes (each optional)."""

    #: ``(stream, n)``: ``n`` more records of ``stream`` committed
    on_progress: ProgressCallback | None = None
    #: where each report stream's backfill stands (days read of the range, time left),
    #: once it is planned and after every request
    on_report_progress: ReportProgressCallback | None = None
    #: each stream's end (done or failed), as it happens
    on_stream_done: StreamDoneCallback | None = None


@dataclass(frozen=True, slots=True)
class SyncOptions:
    """One sync run: where to, which streams, from when, and who listens.

    ``destination`` is a :class:`~kbridge.warehouse.Warehouse` (left open) or a URL
    (``duckdb:///file.duckdb``, ``postgresql://…``; opened and closed by the run).
    Invalid values raise :class:`~kbridge.core.errors.ConfigurationError` on creation.
    """

    destination: Warehouse | str
    #: stream names (default: all); an unknown name is a clear error
    streams: str | tuple[str, ...] | list[str] | None = None
    start_date: datetime | None = None
    full_refresh: bool = False
    reconcile: bool = False
    predictive_analytics: bool = False
    #: concurrent event slices (all share the events rate tier through the limiter)
    slice_concurrency: int = 4
    #: re-read window behind each incremental stream's bookmark: one for all streams, or
    #: per stream name; unset streams keep their own (events and flow reports 7 days,
    #: campaign reports 2, ``updated`` streams 1). Re-read records are upserted, not doubled
    lookback: timedelta | Mapping[str, timedelta] | None = None
    #: the run's time (bookmarks of "now", report days, flush timers); default: the system's
    clock: Clock | None = None
    callbacks: Callbacks = field(default_factory=Callbacks)
    #: collect garbage less often while the run lasts (a process that is mostly a sync
    #: spends a third of an events sync's CPU in the collector otherwise); it changes a
    #: process-wide setting, so an application opts in (the CLI does)
    fewer_collections: bool = False

    def __post_init__(self) -> None:
        if self.start_date is not None:
            object.__setattr__(self, "start_date", utc(self.start_date))
        _check_lookback(self.lookback)
        if not self.selected:
            raise ConfigurationError("streams: nothing selected")

    @property
    def selected(self) -> tuple[Stream, ...]:
        """The streams this run syncs."""
        return select_streams(self.streams)

    def lookback_for(self, stream: Stream) -> timedelta:
        """The lookback ``stream`` uses in this run."""
        chosen = self.lookback
        if isinstance(chosen, timedelta):
            return chosen
        if chosen is not None and stream.name in chosen:
            return chosen[stream.name]
        return stream.lookback


def _check_lookback(lookback: timedelta | Mapping[str, timedelta] | None) -> None:
    values = [lookback] if isinstance(lookback, timedelta) else list((lookback or {}).values())
    if any(not isinstance(v, timedelta) or v < timedelta(0) for v in values):
        raise ConfigurationError("lookback: give a non-negative timedelta (e.g. 7 days)")
    if isinstance(lookback, Mapping):
        select_streams(list(lookback))  # an unknown stream name is a clear error
