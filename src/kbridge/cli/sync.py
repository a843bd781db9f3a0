"""``kbridge sync``: pull the account into DuckDB or PostgreSQL, incrementally.

Thin by design: resolve credentials, parse the options, call
:func:`kbridge.sync.run`, show progress (a live table on a terminal) and a
summary (``-o json`` for scripts). ``--every 24h`` repeats the sync forever;
each run resumes from the bookmarks the last one committed. ``--rate-limits``
sets what the client paces itself to (``spec``, a factor, or ``off``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    Progress,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from kbridge import catalog
from kbridge.api import AsyncClient, ClientConfig, LimiterConfig
from kbridge.api.ratelimit import RateLimiter, parse_limit_factor
from kbridge.cli.credentials import resolve_credentials
from kbridge.cli.output import fail
from kbridge.cli.warehouse_url import WAREHOUSE_URL_HELP, with_hint
from kbridge.core import ConfigurationError, KbridgeError, SystemClock, dumps_str
from kbridge.sync import (
    STREAMS,
    Callbacks,
    ReportProgress,
    StreamResult,
    SyncError,
    SyncOptions,
    SyncResult,
    get_stream,
    run,
    select_streams,
)
from kbridge.warehouse import DestinationBusyError, duckdb_path

__all__ = ["StreamProgress", "budget_text", "parse_every", "parse_rate_limits", "sync"]

DEFAULT_DESTINATION = "duckdb:///./kbridge.duckdb"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_every(text: str) -> float:
    """``"24h"``, ``"30m"``, ``"1d"``, ``"90s"`` → seconds (at least one minute)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if not match:
        raise ConfigurationError(f"--every: {text!r} is not a duration like 24h, 30m or 1d")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds < 60:
        raise ConfigurationError("--every: the interval must be at least 1m")
    return seconds


def parse_lookback(text: str) -> timedelta:
    """``"7d"``, ``"12h"``, ``"0"`` → how far behind its bookmark every stream re-reads."""
    if text.strip() == "0":
        return timedelta(0)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if not match:
        raise ConfigurationError(f"--lookback: {text!r} is not a duration like 7d, 12h or 0")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def parse_log_every(text: str) -> float | None:
    """``"30s"``, ``"2m"``, ``"0.5s"`` → seconds between progress lines; ``"0"`` → none."""
    if text.strip() == "0":
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh])\s*", text)
    if not match or float(match.group(1)) <= 0:
        raise ConfigurationError(f"--log-every: {text!r} is not a duration like 30s or 2m (0: off)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_rate_limits(text: str) -> LimiterConfig:
    """``"spec"``, ``"off"`` or a factor such as ``"0.05"`` → the client's limiter config."""
    try:
        return LimiterConfig(limit_factor=parse_limit_factor(text))
    except ValueError as exc:
        raise ConfigurationError(f"--rate-limits {exc}") from None


def _parse_start(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigurationError(
            f"--start-date: {text!r} is not an ISO date-time like 2024-01-01T00:00:00Z"
        ) from None
    if value.tzinfo is None:
        raise ConfigurationError("--start-date: give a timezone, e.g. 2024-01-01T00:00:00Z")
    return value


def sync(
    to: Annotated[
        str,
        typer.Option("--to", help=f"destination: {WAREHOUSE_URL_HELP}"),
    ] = DEFAULT_DESTINATION,
    streams: Annotated[
        str | None,
        typer.Option(
            help=f"comma-separated streams (default all: {', '.join(s.name for s in STREAMS)})"
        ),
    ] = None,
    start_date: Annotated[
        str | None,
        typer.Option(
            help="first run only: no older events or report days (e.g. 2024-01-01T00:00:00Z); "
            "profiles, lists, segments, campaigns, flows and templates sync whole"
        ),
    ] = None,
    full_refresh: Annotated[
        bool, typer.Option(help="ignore bookmarks; re-read everything")
    ] = False,
    reconcile: Annotated[
        bool, typer.Option(help="also remove records deleted in Klaviyo (id-only scans)")
    ] = False,
    predictive_analytics: Annotated[
        bool, typer.Option(help="profiles with predictive analytics (a slower rate tier)")
    ] = False,
    lookback: Annotated[
        str | None,
        typer.Option(
            help="re-read this far behind each bookmark, for late data (default: events and "
            "flow reports 7d, campaign reports 2d, other streams 1d; 0 turns it off)"
        ),
    ] = None,
    every: Annotated[
        str | None, typer.Option(help="repeat forever at this interval (e.g. 24h)")
    ] = None,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="the summary as table (default) or json"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", hidden=True, help="same as -o json")] = False,
    log_every: Annotated[
        str,
        typer.Option(
            help="without a terminal (logs, cron): a progress line on stderr this often "
            "(0: none); a terminal gets the live display instead"
        ),
    ] = "30s",
    rate_limits: Annotated[
        str,
        typer.Option(
            help="the limits this client paces itself to: Klaviyo's published ones (spec), "
            "scaled by a FACTOR, or none (off: for a server without limits such as "
            "`kbridge emulator serve --rate-limits off`; 429s are still honoured)"
        ),
    ] = "spec",
    api_key: Annotated[
        str | None, typer.Option(help="private key (default: KLAVIYO_API_KEY)", show_default=False)
    ] = None,
    base_url: Annotated[
        str | None, typer.Option(help="API base URL (default: KLAVIYO_BASE_URL or Klaviyo's)")
    ] = None,
    connection: Annotated[
        str | None, typer.Option("--connection", help="a saved connection's name")
    ] = None,
) -> None:
    """Sync the Klaviyo account into a warehouse; runs resume where the last one stopped."""
    if output not in (None, "table", "json"):
        fail(f"--output: {output!r} is not one of table, json")
    as_json = as_json or output == "json"
    creds = resolve_credentials(api_key, base_url, connection, os.environ)
    selected = [s.name for s in select_streams(streams)] if streams else None
    start = _parse_start(start_date)
    window = parse_lookback(lookback) if lookback is not None else None
    interval = parse_every(every) if every else None
    heartbeat = parse_log_every(log_every)
    config = ClientConfig(limiter=parse_rate_limits(rate_limits))
    live = not as_json and sys.stderr.isatty()
    clock = SystemClock()
    fallbacks: list[str] = []

    async def once() -> SyncResult:
        async with AsyncClient(**creds.client_kwargs(), config=config) as client:
            try:
                return await _with_progress(
                    client,
                    to,
                    selected,
                    start,
                    full_refresh,
                    reconcile,
                    predictive_analytics,
                    show=live,
                    lookback=window,
                    log_every=None if live else heartbeat,
                )
            finally:
                fallbacks[:] = client.rate_limiter.fallbacks

    async def loop() -> None:
        while True:
            try:
                result = await once()
                _report(result, as_json, fallbacks)
            except SyncError as exc:
                _report(exc.result, as_json, fallbacks)
                if interval is None:
                    fail(_explained(str(exc), to))
                Console(stderr=True).print(f"[yellow]warning:[/] {exc}")
            except DestinationBusyError as exc:
                # another run has the streams: a repeating sync tries again next time
                if interval is None:
                    fail(str(exc))
                Console(stderr=True).print(f"[yellow]warning:[/] {escape(str(exc))}")
            if interval is None:
                return
            await clock.sleep(interval)

    try:
        asyncio.run(loop())
    except KbridgeError as exc:  # e.g. the warehouse cannot be opened
        fail(_explained(str(exc), to))


def _explained(message: str, destination: str) -> str:
    """``message``, with the relative-path hint when the DuckDB file was never created."""
    path = duckdb_path(destination) if destination.startswith("duckdb:") else None
    if path is None or Path(path).exists():
        return message
    return with_hint(message, destination)


def ceiling_per_second(stream: str, limiter: RateLimiter | None = None) -> float | None:
    """Records a second ``stream`` reaches at its operation's steady limit with full pages:
    the limit ``limiter`` paces to (default: Klaviyo's published one). None for report and
    metric-aggregate streams, whose requests are not pages of records, and when the
    limiter does not pace."""
    found = get_stream(stream)
    if found.report is not None or found.aggregates is not None:
        return None
    op = catalog.get(found.operation_id)
    limit = (limiter or RateLimiter(clock=SystemClock())).paced_limit(op)
    if limit is None or not op.max_page_size:
        return None
    return limit.steady * op.max_page_size / 60.0


#: a live share of the ceiling means something only after this long: before, the burst
#: window's allowance (and a few pages) make it read like 1,115 %
MIN_BUDGET_SECONDS = 10.0
NOT_YET = "—"


def budget_text(
    stream: str,
    speed: float | None,
    limiter: RateLimiter | None = None,
    *,
    elapsed: float | None = None,
) -> str:
    """``"96 % of ceiling"``: the live records/s against :func:`ceiling_per_second`. The
    summary's exact share counts requests; this one, on the way, counts records.
    ``elapsed``: seconds the speed was measured over; under :data:`MIN_BUDGET_SECONDS`
    the share is ``"—"`` (not yet meaningful)."""
    ceiling = ceiling_per_second(stream, limiter)
    if speed is None or not ceiling:
        return ""
    if elapsed is not None and elapsed < MIN_BUDGET_SECONDS:
        return NOT_YET
    return f"{100 * speed / ceiling:.0f} % of ceiling"


class StreamProgress:
    """The live display of a sync: a row per stream with its records, speed and share of
    the ceiling (report streams: the day their backfill reached and the time left); a
    finished stream's row stops (spinner and timer) and shows ✓ or ✗.

    Pass :meth:`on_progress`, :meth:`on_report` and :meth:`on_stream_done` to
    :func:`kbridge.sync.run`.
    ``get_time`` is the display's clock (injected by tests).
    """

    def __init__(
        self,
        progress: Progress,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.progress = progress
        self._limiter = limiter
        self.tasks: dict[str, TaskID] = {}

    @classmethod
    def create(
        cls,
        console: Console,
        limiter: RateLimiter | None = None,
        *,
        disable: bool = False,
        get_time: Callable[[], float] | None = None,
    ) -> StreamProgress:
        progress = Progress(
            SpinnerColumn(finished_text="[green]✓[/]"),
            TextColumn("{task.description:<22}"),
            TextColumn("{task.completed:>10,.0f} records"),
            TextColumn("{task.fields[rate]:>12}"),
            TextColumn("{task.fields[budget]:>18}"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[days]}"),
            console=console,
            disable=disable,
            get_time=get_time,
        )
        return cls(progress, limiter)

    def _task(self, stream: str) -> TaskID:
        if stream not in self.tasks:
            self.tasks[stream] = self.progress.add_task(
                stream, total=None, rate="", budget="", days=""
            )
        return self.tasks[stream]

    def _get(self, task_id: TaskID) -> Task:
        return next(t for t in self.progress.tasks if t.id == task_id)

    def on_progress(self, stream: str, n: int) -> None:
        task_id = self._task(stream)
        self.progress.advance(task_id, n)
        task = self._get(task_id)
        speed = task.speed
        self.progress.update(
            task_id,
            rate="" if speed is None else f"{speed:,.0f}/s",
            budget=budget_text(stream, speed, self._limiter, elapsed=task.elapsed),
        )

    def on_report(self, p: ReportProgress) -> None:
        """A report stream's backfill: "day 120 of 365, ~9 min left"."""
        self.progress.update(self._task(p.stream), days=p.text)

    def on_stream_done(self, result: StreamResult) -> None:
        task_id = self._task(result.stream)
        # a total makes rich call the task finished: its spinner and timer stop
        done = self._get(task_id).completed
        if result.error is None:
            self.progress.update(task_id, total=done)
        else:
            self.progress.update(task_id, total=done, budget="failed")
        self.progress.stop_task(task_id)


async def _with_progress(
    client: AsyncClient,
    to: str,
    streams: list[str] | None,
    start: datetime | None,
    full_refresh: bool,
    reconcile: bool,
    predictive: bool,
    *,
    show: bool,
    lookback: timedelta | None = None,
    log_every: float | None = None,
) -> SyncResult:
    live = StreamProgress.create(Console(stderr=True), client.rate_limiter, disable=not show)
    progress = live.progress
    counts: dict[str, int] = {}
    #: report streams: "day 120 of 365, ~9 min left"
    reports: dict[str, str] = {}

    def on_report(p: ReportProgress) -> None:
        reports[p.stream] = p.text
        live.on_report(p)

    def on_progress(stream: str, n: int) -> None:
        counts[stream] = counts.get(stream, 0) + n
        live.on_progress(stream, n)

    lines = (
        None
        if log_every is None
        else asyncio.create_task(_log_lines(counts, log_every, client.rate_limiter, reports))
    )
    try:
        with progress:
            options = SyncOptions(
                to,
                streams=streams,
                start_date=start,
                full_refresh=full_refresh,
                reconcile=reconcile,
                predictive_analytics=predictive,
                lookback=lookback,
                callbacks=Callbacks(on_progress, on_report, live.on_stream_done),
                # the process is the sync: a third of an events sync's CPU was the collector
                fewer_collections=True,
            )
            return await run(client, options)
    finally:
        if lines is not None:
            lines.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lines


async def _log_lines(
    counts: dict[str, int], every: float, limiter: RateLimiter, reports: dict[str, str]
) -> None:
    """Every ``every`` seconds, one stderr line with each stream's records so far and its
    rate since the last line (report streams: the day reached and the time left): what a
    log or cron mail shows of a long sync."""
    console = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)
    clock = SystemClock()
    last, since = dict(counts), clock.monotonic()
    while True:
        await asyncio.sleep(every)
        now = clock.monotonic()
        parts = []
        for stream in dict.fromkeys([*counts, *reports]):
            n = counts.get(stream, 0)
            speed = (n - last.get(stream, 0)) / max(now - since, 1e-9)
            budget = budget_text(stream, speed, limiter, elapsed=now - since)
            parts.append(
                f"{stream} {n:,} records, {speed:,.0f}/s"
                + (f" ({budget})" if budget else "")
                + (f", {reports[stream]}" if stream in reports else "")
            )
        console.print("sync: " + ("; ".join(parts) if parts else "waiting for the first pages"))
        last, since = dict(counts), now


def _report(result: SyncResult, as_json: bool, fallbacks: Sequence[str] = ()) -> None:
    if as_json:
        typer.echo(dumps_str(result.to_dict()))
        return
    console = Console()
    console.print(f"account {result.account_id}")
    for r in result.streams.values():
        rate = f"{r.records / r.seconds:,.0f}/s" if r.seconds > 0 else "-"
        budget = "" if r.budget_used is None else f"{100 * r.budget_used:5.1f}% of limit"
        status = "[green]ok[/]" if r.error is None else f"[red]{r.error}[/]"
        if r.error is None and r.note:
            status = f"[yellow]{r.note}[/]"
        # report days read again for late events are most of a daily run's rows
        split = (
            f"  ({r.records - r.reread:,} new, {r.reread:,} re-read)"
            if get_stream(r.stream).report is not None
            or get_stream(r.stream).aggregates is not None
            else ""
        )
        console.print(
            f"  {r.stream:<22} {r.records:>10,} records  {r.seconds:8.1f}s  {rate:>10}"
            f"  {budget}  {status}{split}"
        )
    if fallbacks:
        console.print(pacing_note(fallbacks), highlight=False, markup=False)


def pacing_note(fallbacks: Sequence[str]) -> str:
    """The summary's line when the server did not behave as Klaviyo documents its limits."""
    return (
        f"pacing: a 429 the documented windows did not predict ({', '.join(fallbacks)}): "
        "the server behaves as a leaky bucket or shares the quota; paced as a token bucket"
    )
