"""Report streams: campaign and flow performance read day by day from the reporting API."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from kbridge import catalog
from kbridge.api import QuotaExhaustedError
from kbridge.core.jsoncodec import dumps_str
from kbridge.sync.context import Context
from kbridge.sync.records import Bookmark
from kbridge.sync.results import StreamResult
from kbridge.sync.state import format_ts, parse_ts
from kbridge.sync.streams import REPORT_STATISTICS, Report, Stream
from kbridge.sync.windows import ReportProgress
from kbridge.warehouse import Batch

__all__ = ["Reports", "report_rows", "report_windows"]

_DAY = timedelta(days=1)


def _midnight(dt: datetime) -> datetime:
    return dt.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


async def _conversion_metric(ctx: Context) -> str | None:
    """The "Placed Order" metric (reports require a conversion metric); None if absent."""
    async for page in ctx.client.iter_pages("get_metrics", params={"fields[metric]": "name"}):
        for r in page.resources:
            if r.attributes.get("name") == "Placed Order":
                return r.id
    return None


def _report_days(ctx: Context, report: Report, state: Bookmark | None) -> tuple[datetime, datetime]:
    """``[first, end)``: the complete UTC days not read yet, all of them (the daily cap,
    not a per-run length, decides how many this run reads)."""
    today = _midnight(ctx.clock.now())
    if state is not None and state.bookmark and not ctx.options.full_refresh:
        first = _midnight(parse_ts(state.bookmark)) + _DAY
    elif ctx.options.start_date is not None:
        first = _midnight(ctx.options.start_date)
    else:
        first = today - report.default_backfill_days * _DAY
    return first, today


def _report_reread(
    ctx: Context, stream: Stream, state: Bookmark | None, first: datetime
) -> datetime:
    """Where this run starts reading: the lookback's whole days before ``first`` (the first
    day not yet read) when the stream has a bookmark, never before the start date."""
    if state is None or not state.bookmark or ctx.options.full_refresh:
        return first
    days = -(-ctx.options.lookback_for(stream) // _DAY)  # whole days, rounded up
    again = first - days * _DAY
    if ctx.options.start_date is not None:
        again = max(again, _midnight(ctx.options.start_date))
    return min(again, first)


class Reports:
    """Reporting-API streams: POST queries by day, all campaigns/flows at once."""

    async def sync(self, ctx: Context, stream: Stream, result: StreamResult) -> None:
        await _sync_report(ctx, stream, result)


async def _sync_report(ctx: Context, stream: Stream, result: StreamResult) -> None:
    """Day by day (values) or in ``days_per_request`` spans (series); each request's rows are
    committed with the bookmark "complete through this day".

    Every request asks for all campaigns/flows at once (``group_by``), so the cost is one
    request per day-aligned window. A run that has new days to read also reads again the
    lookback's days before them (a day's figures change when its events arrive late):
    after the new days, or in the same request when one span holds both. The bookmark
    never moves back. Reports have a daily cap (225): the run plans only as many requests
    as today's budget holds (new days first; the re-read only when both fit), and a cap
    met anyway (another integration spent it) ends the stream with a note, not an error;
    the next run resumes at the first missing day.
    """
    report = stream.report
    assert report is not None
    states = await ctx.writer.load_state(ctx.account_id, stream.name)
    day, end = _report_days(ctx, report, states.bookmark())
    if day >= end:
        return
    first, wanted_end = day, end
    reached = day - _DAY  # the bookmark: complete through this day
    span = report.days_per_request * _DAY
    budget = ctx.client.rate_limiter.daily_budget(
        ctx.client.account, catalog.get(stream.operation_id)
    )
    wanted = -(-(end - day) // span)  # ceiling: the last request may be shorter
    if budget is not None and budget.remaining < wanted:
        if budget.remaining <= 0:
            result.note = _deferred(budget.resets_at, day)
            return
        end = day + budget.remaining * span
        result.note = (
            f"today's report budget allows {budget.remaining} of {wanted} requests; "
            f"days from {end.date().isoformat()} follow after "
            f"{budget.resets_at.isoformat(timespec='minutes')}"
        )
    windows = report_windows(day, end, _report_reread(ctx, stream, states.bookmark(), day), span)
    if budget is not None and len(windows) > budget.remaining:
        windows = report_windows(day, end, day, span)  # no room for the re-read
    metric = await _conversion_metric(ctx)
    if metric is None:
        return
    tell = _report_progress(ctx, stream, first, wanted_end, end, len(windows))
    tell(0, reached)
    for done, (start, stop) in enumerate(windows, 1):
        attributes: dict[str, Any] = {
            "statistics": list(REPORT_STATISTICS),
            "timeframe": {"start": format_ts(start), "end": format_ts(stop)},
            "conversion_metric_id": metric,
            "group_by": list(report.group_by),
        }
        if report.kind == "series":
            attributes["interval"] = "daily"
        body = {"data": {"type": report.object_type, "attributes": attributes}}
        try:
            doc = await ctx.client.get_document(stream.operation_id, json=body, idempotent=True)
        except QuotaExhaustedError as exc:
            result.note = _deferred(exc.resets_at, reached + _DAY)
            return
        found = doc.first.attributes if doc.first is not None else {}
        rows = report_rows(ctx.account_id, report, found, start)
        batch = Batch(ctx.account_id).upsert(stream.table, rows)
        reached = max(reached, stop - _DAY)  # a re-read day leaves the bookmark where it was
        batch.state.append(states.update("", Bookmark(format_ts(reached))))
        await ctx.writer.commit(batch)
        ctx.progress(stream, result, len(rows), 1)
        # a row's day (UTC for values, the account's timezone for series) as a date
        new_from = first.date().isoformat()
        result.reread += sum(1 for row in rows if str(row[1])[:10] < new_from)
        tell(done, reached)


def _report_progress(
    ctx: Context, stream: Stream, first: datetime, wanted: datetime, planned: datetime, n: int
) -> Callable[[int, datetime], None]:
    """``tell(requests_done, bookmark)``: a :class:`ReportProgress` for the run's range
    ``[first, wanted)``, of which ``[first, planned)`` fit today's budget in ``n`` requests.

    The time left is the requests left at the pace the client keeps the operation to, or,
    unpaced, at the pace seen so far (both on the sync's clock).
    """
    callback = ctx.options.callbacks.on_report_progress
    pace = ctx.client.rate_limiter.pace(catalog.get(stream.operation_id))
    days, deferred = (wanted - first) // _DAY, (wanted - planned) // _DAY
    started = ctx.clock.monotonic()

    def tell(done: int, reached: datetime) -> None:
        if callback is None:
            return
        left = n - done
        if pace is not None:
            seconds: float | None = left / pace[0]
        elif done:
            seconds = (ctx.clock.monotonic() - started) / done * left
        else:
            seconds = None
        day = max(0, (reached + _DAY - first) // _DAY)
        callback(ReportProgress(stream.name, day, days, left, seconds, deferred))

    return tell


def report_windows(
    first: datetime, end: datetime, again: datetime, span: timedelta
) -> list[tuple[datetime, datetime]]:
    """The ``[start, stop)`` requests for new days ``[first, end)`` and re-read days
    ``[again, first)``: one request when a span holds both, else the new days first."""
    if end - again <= span:
        return [(again, end)]

    def spans(day: datetime, stop: datetime) -> list[tuple[datetime, datetime]]:
        return [(d, min(d + span, stop)) for d in _days(day, stop, span)]

    return spans(first, end) + spans(again, first)


def _days(day: datetime, stop: datetime, step: timedelta) -> Iterator[datetime]:
    while day < stop:
        yield day
        day += step


def _deferred(resets_at: datetime, day: datetime) -> str:
    return (
        f"daily quota exhausted until {resets_at.isoformat(timespec='minutes')}; "
        f"the next run resumes at {day.date().isoformat()}"
    )


def _number(value: Any) -> float | None:
    """A statistic as a float; anything else (null, or a shape Klaviyo may add) is NULL here
    and kept as given in the row's raw statistics."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _count(value: Any) -> int | None:
    number = _number(value)
    return None if number is None or number != number else round(number)


def _stat_values(stats: Mapping[str, Any]) -> list[Any]:
    return [
        _number(stats.get(n)) if n == "conversion_value" else _count(stats.get(n))
        for n in REPORT_STATISTICS
    ]


def report_rows(
    account_id: str, report: Report, attributes: Mapping[str, Any], day: datetime
) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for item in attributes.get("results") or ():
        groupings = item.get("groupings") or {}
        keys = [str(groupings.get(g) or "") for g in report.group_by]
        stats = item.get("statistics") or {}
        if report.kind == "values":
            rows.append((account_id, format_ts(day), *keys, *_stat_values(stats), dumps_str(stats)))
            continue
        for i, when in enumerate(attributes.get("date_times") or ()):
            point = {
                k: v[i] if isinstance(v, list) and i < len(v) else None for k, v in stats.items()
            }
            rows.append((account_id, str(when), *keys, *_stat_values(point), dumps_str(point)))
    return rows
