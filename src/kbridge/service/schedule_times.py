"""When a schedule is due: daily at a local ``HH:MM`` or a 5-field cron, in an IANA timezone.

Pure arithmetic on aware UTC datetimes. Local times that the clocks skip (spring
forward) run at the first instant after the gap; local times that happen twice
(fall back) run once, at the first occurrence. Cron expressions follow the same
rule: croniter walks naive local wall times, and each is then placed on the
timeline here, so croniter's own DST handling never decides anything.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

from kbridge.service.errors import InvalidScheduleError

__all__ = ["latest_due", "next_due", "next_due_after", "validate_schedule"]

_HH_MM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
# beyond any UTC offset change: a naive wall time this far from ``after`` cannot be due next
_SHIFT = timedelta(hours=3)


def validate_schedule(*, daily_at: str | None, cron: str | None, timezone: str) -> ZoneInfo:
    """The schedule's zone, or :class:`InvalidScheduleError` naming the field that is wrong."""
    zone = _zone(timezone)
    if daily_at is not None:
        _daily_time(daily_at)
    if cron is not None:
        _check_cron(cron)
    return zone


def next_due_after(
    after: datetime, *, daily_at: str | None, cron: str | None, timezone: str
) -> datetime:
    """The first due time strictly after ``after`` (aware; returned in UTC)."""
    zone = _zone(timezone)
    after = _utc(after)
    if daily_at is not None:
        at = _daily_time(daily_at)
        day = after.astimezone(zone).date()
        for offset in range(3):
            due = _place(datetime.combine(day + timedelta(days=offset), at), zone)
            if due > after:
                return due
        raise AssertionError("a daily time recurs within three days")  # pragma: no cover
    if cron is not None:
        _check_cron(cron)
        walk = croniter(cron, _wall(after, zone) - _SHIFT)
        # wall times around a fall back are not in timeline order: look a little further
        best: datetime | None = None
        while True:
            wall: datetime = walk.get_next(datetime)
            if best is not None and wall > _wall(best, zone) + _SHIFT:
                return best
            due = _place(wall, zone)
            if due > after and (best is None or due < best):
                best = due
    raise InvalidScheduleError("daily_at", "a schedule needs exactly one of daily_at or cron")


# the name the service's docs use; ``next_due_after`` where a parameter is called next_due
next_due = next_due_after


def latest_due(at: datetime, *, daily_at: str | None, cron: str | None, timezone: str) -> datetime:
    """The last due time at or before ``at``: the one to run for a schedule missed until then."""
    zone = _zone(timezone)
    at = _utc(at)
    if daily_at is not None:
        when = _daily_time(daily_at)
        day = at.astimezone(zone).date()
        for offset in range(3):
            due = _place(datetime.combine(day - timedelta(days=offset), when), zone)
            if due <= at:
                return due
        raise AssertionError("a daily time recurs within three days")  # pragma: no cover
    if cron is not None:
        _check_cron(cron)
        walk = croniter(cron, _wall(at, zone) + _SHIFT)
        best: datetime | None = None
        while True:
            wall: datetime = walk.get_prev(datetime)
            if best is not None and wall < _wall(best, zone) - _SHIFT:
                return best
            due = _place(wall, zone)
            if due <= at and (best is None or due > best):
                best = due
    raise InvalidScheduleError("daily_at", "a schedule needs exactly one of daily_at or cron")


def _place(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant of naive local ``wall``: its first occurrence, or the end of its gap."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # a wall time the clocks skip: the two offsets bracket the change; find its second
    other = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    lo, hi = sorted((int(first.timestamp()), int(other.timestamp())))
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _wall(datetime.fromtimestamp(mid, UTC), zone) > wall:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("schedule times are aware datetimes")
    return value.astimezone(UTC)


def _zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidScheduleError(
            "timezone", f"timezone: {timezone!r} is not an IANA timezone (e.g. Europe/Berlin)"
        ) from None


def _daily_time(daily_at: str) -> time:
    match = _HH_MM.fullmatch(daily_at)
    if match is None:
        raise InvalidScheduleError(
            "daily_at", f"daily_at: {daily_at!r} is not a 24-hour HH:MM time (e.g. 06:30)"
        )
    return time(int(match.group(1)), int(match.group(2)))


def _check_cron(cron: str) -> None:
    if len(cron.split()) != 5 or not croniter.is_valid(cron):
        raise InvalidScheduleError(
            "cron", f"cron: {cron!r} is not a 5-field cron expression (e.g. '0 6 * * 1-5')"
        )
    try:  # valid fields may still name no date at all
        croniter(cron, datetime(2000, 1, 1, tzinfo=UTC)).get_next(datetime)
    except CroniterBadDateError:
        raise InvalidScheduleError(
            "cron", f"cron: {cron!r} names no date that exists (e.g. 31 February)"
        ) from None
