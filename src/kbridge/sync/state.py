"""Pure functions over bookmarks: where to resume, how a page moves the bookmark.

A bookmark is the largest cursor value among rows already committed, stored
beside those rows in the same transaction. Resuming asks the API for records
at or after it, less a *lookback*: Klaviyo is eventually consistent, so a
record can become visible after later ones were read (events days after
their ``datetime``). Whatever is read again is upserted onto itself by its
primary key, so nothing late is lost and nothing re-read is doubled.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from kbridge.sync.streams import Cursor

__all__ = [
    "EPOCH_FLOOR",
    "advance",
    "cursor_filter",
    "format_ts",
    "join_filters",
    "max_cursor",
    "parse_ts",
    "resume_from",
]

#: before any Klaviyo data can exist (Klaviyo was founded in 2012)
EPOCH_FLOOR = datetime(2012, 1, 1, tzinfo=UTC)


def parse_ts(value: str) -> datetime:
    """An RFC 3339 timestamp (``Z`` or an offset) as aware UTC."""
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def format_ts(dt: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS+00:00`` (whole seconds, as Klaviyo's filters expect)."""
    return dt.astimezone(UTC).replace(microsecond=0).isoformat()


def resume_from(
    state: Mapping[str, Any] | None,
    start_date: datetime | None,
    *,
    full_refresh: bool,
    lookback: timedelta = timedelta(0),
) -> str | None:
    """The lower bound for this run: the bookmark less ``lookback`` (never before the start
    date), else the start date (first run), else none."""
    if not full_refresh and state and state.get("bookmark"):
        if not lookback:
            return str(state["bookmark"])
        since = parse_ts(str(state["bookmark"])) - lookback
        if start_date is not None:
            since = max(since, start_date)
        return format_ts(max(since, EPOCH_FLOOR))
    return None if start_date is None else format_ts(start_date)


def cursor_filter(cursor: Cursor, since: str | None, until: str | None = None) -> str | None:
    """The filter clause(s) selecting records from ``since`` (inclusive) up to ``until``."""
    parts: list[str] = []
    if since is not None:
        if cursor.inclusive:
            parts.append(f"greater-or-equal({cursor.filter_field},{format_ts(parse_ts(since))})")
        else:
            earlier = parse_ts(since) - timedelta(seconds=1)
            parts.append(f"greater-than({cursor.filter_field},{format_ts(earlier)})")
    if until is not None:
        parts.append(f"less-than({cursor.filter_field},{format_ts(parse_ts(until))})")
    return join_filters(parts)


def join_filters(parts: Iterable[str | None]) -> str | None:
    """Klaviyo ANDs comma-separated conditions."""
    kept = [p for p in parts if p]
    return ",".join(kept) if kept else None


def max_cursor(values: Iterable[Any]) -> str | None:
    """The latest of ``values`` (RFC 3339 strings; nulls ignored), compared as instants."""
    best: tuple[datetime, str] | None = None
    for v in values:
        if not v:
            continue
        dt = parse_ts(str(v))
        if best is None or dt > best[0]:
            best = (dt, str(v))
    return None if best is None else format_ts(best[0])


def advance(bookmark: str | None, candidate: str | None) -> str | None:
    """The later of two bookmarks; a bookmark never moves backwards."""
    return max_cursor([bookmark, candidate])
