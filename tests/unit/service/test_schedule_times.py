"""Schedule arithmetic: daily local times and cron expressions across timezones and DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kbridge.service.errors import InvalidScheduleError, ServiceError
from kbridge.service.schedule_times import latest_due, next_due, validate_schedule

pytestmark = pytest.mark.unit

NY = "America/New_York"
ZONES = [
    "UTC",
    NY,
    "Europe/Berlin",
    "Europe/London",
    "Australia/Sydney",
    "Australia/Lord_Howe",  # a 30-minute DST shift
    "Asia/Kolkata",  # +05:30, no DST
    "Pacific/Chatham",  # +12:45 / +13:45
    "America/Santiago",
    "Africa/Casablanca",  # clocks go back for Ramadan
]
CRONS = ["0 6 * * *", "30 2 * * *", "*/15 * * * *", "0 9-17 * * mon-fri", "15 1 1 * *"]


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def _wall(instant: datetime, zone: str) -> datetime:
    return instant.astimezone(ZoneInfo(zone)).replace(tzinfo=None)


# -- daily at a local time ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("after", "daily_at", "zone", "expected"),
    [
        # an ordinary day: 06:00 Berlin in winter is 05:00 UTC, in summer 04:00 UTC
        (_utc(2026, 1, 10, 12), "06:00", "Europe/Berlin", _utc(2026, 1, 11, 5)),
        (_utc(2026, 7, 10, 3), "06:00", "Europe/Berlin", _utc(2026, 7, 10, 4)),
        # exactly at a due time: the next one, a day later
        (_utc(2026, 7, 10, 4), "06:00", "Europe/Berlin", _utc(2026, 7, 11, 4)),
        # spring forward (New York, 8 March 2026, 02:00 -> 03:00): 02:30 does not exist and
        # runs at 03:00 EDT, the first instant after it
        (_utc(2026, 3, 7, 12), "02:30", NY, _utc(2026, 3, 8, 7)),
        (_utc(2026, 3, 8, 7), "02:30", NY, _utc(2026, 3, 9, 6, 30)),
        # Berlin's gap (29 March 2026, 02:00 -> 03:00)
        (_utc(2026, 3, 28, 12), "02:00", "Europe/Berlin", _utc(2026, 3, 29, 1)),
        # Lord Howe skips half an hour (4 October 2026, 02:00 -> 02:30)
        (_utc(2026, 10, 3, 12), "02:10", "Australia/Lord_Howe", _utc(2026, 10, 3, 15, 30)),
        # fall back (New York, 1 November 2026, 02:00 -> 01:00): 01:30 happens twice and
        # runs once, at the first (EDT); during the second pass it is not due again
        (_utc(2026, 10, 31, 12), "01:30", NY, _utc(2026, 11, 1, 5, 30)),
        (_utc(2026, 11, 1, 5, 30), "01:30", NY, _utc(2026, 11, 2, 6, 30)),
        (_utc(2026, 11, 1, 6, 0), "01:30", NY, _utc(2026, 11, 2, 6, 30)),
        # southern hemisphere fall back (Sydney, 5 April 2026, 03:00 -> 02:00)
        (_utc(2026, 4, 4, 0), "02:30", "Australia/Sydney", _utc(2026, 4, 4, 15, 30)),
        # half- and quarter-hour offsets
        (_utc(2026, 5, 1, 0), "06:00", "Asia/Kolkata", _utc(2026, 5, 1, 0, 30)),
        (_utc(2026, 5, 1, 0), "06:00", "Pacific/Chatham", _utc(2026, 5, 1, 17, 15)),
        # the year's end
        (_utc(2026, 12, 31, 23, 30), "00:00", "UTC", _utc(2027, 1, 1)),
    ],
)
def test_daily_due_times(after: datetime, daily_at: str, zone: str, expected: datetime) -> None:
    due = next_due(after, daily_at=daily_at, cron=None, timezone=zone)
    assert due == expected
    assert due.tzinfo is UTC


def test_an_aware_non_utc_after_is_the_same_instant() -> None:
    after = _utc(2026, 1, 10, 12).astimezone(ZoneInfo("Asia/Tokyo"))
    due = next_due(after, daily_at="06:00", cron=None, timezone="Europe/Berlin")
    assert due == _utc(2026, 1, 11, 5)


def test_latest_due_is_the_last_due_time_at_or_before() -> None:
    def latest(at: datetime) -> datetime:
        return latest_due(at, daily_at="06:00", cron=None, timezone="Europe/Berlin")

    assert latest(_utc(2026, 1, 13, 9)) == _utc(2026, 1, 13, 5)
    assert latest(_utc(2026, 1, 13, 5)) == _utc(2026, 1, 13, 5)
    assert latest(_utc(2026, 1, 13, 4)) == _utc(2026, 1, 12, 5)


# -- cron -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("after", "cron", "zone", "expected"),
    [
        (_utc(2026, 1, 9, 12), "0 9-17 * * mon-fri", "Europe/Berlin", _utc(2026, 1, 9, 13)),
        # Friday 17:00 Berlin is the week's last: Monday 09:00
        (_utc(2026, 1, 9, 16), "0 9-17 * * mon-fri", "Europe/Berlin", _utc(2026, 1, 12, 8)),
        # the spring-forward gap: 02:30 runs at 03:00 EDT, as for daily
        (_utc(2026, 3, 7, 12), "30 2 * * *", NY, _utc(2026, 3, 8, 7)),
        # every 15 minutes across the gap: 02:00-02:45 collapse into one run at 03:00
        (_utc(2026, 3, 8, 6, 45), "*/15 * * * *", NY, _utc(2026, 3, 8, 7)),
        (_utc(2026, 3, 8, 7), "*/15 * * * *", NY, _utc(2026, 3, 8, 7, 15)),
        # the repeated hour of fall back runs once: after 01:45 EDT comes 02:00 EST
        (_utc(2026, 11, 1, 5, 45), "*/15 * * * *", NY, _utc(2026, 11, 1, 7)),
        (_utc(2026, 11, 1, 6, 10), "*/15 * * * *", NY, _utc(2026, 11, 1, 7)),
        (_utc(2026, 2, 1), "0 0 29 2 *", "UTC", _utc(2028, 2, 29)),
    ],
)
def test_cron_due_times(after: datetime, cron: str, zone: str, expected: datetime) -> None:
    assert next_due(after, daily_at=None, cron=cron, timezone=zone) == expected


def test_latest_cron_due_in_the_repeated_hour_is_its_last_first_pass_time() -> None:
    # at 01:10 EST (second pass) the last due time is 01:45 EDT, an hour of wall time "later"
    at = _utc(2026, 11, 1, 6, 10)
    assert latest_due(at, daily_at=None, cron="*/15 * * * *", timezone=NY) == _utc(
        2026, 11, 1, 5, 45
    )


# -- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("daily_at", "cron", "zone", "field"),
    [
        ("6:00", None, "UTC", "daily_at"),
        ("24:00", None, "UTC", "daily_at"),
        ("06:60", None, "UTC", "daily_at"),
        ("06:00 ", None, "UTC", "daily_at"),
        ("06:00", None, "Mars/Olympus", "timezone"),
        ("06:00", None, "", "timezone"),
        ("06:00", None, "../../etc/passwd", "timezone"),
        (None, "0 6 * *", "UTC", "cron"),
        (None, "0 6 * * * *", "UTC", "cron"),
        (None, "61 * * * *", "UTC", "cron"),
        (None, "every day", "UTC", "cron"),
        (None, "0 0 31 2 *", "UTC", "cron"),
    ],
)
def test_bad_schedules_are_one_line_naming_the_field(
    daily_at: str | None, cron: str | None, zone: str, field: str
) -> None:
    with pytest.raises(InvalidScheduleError) as caught:
        validate_schedule(daily_at=daily_at, cron=cron, timezone=zone)
    assert isinstance(caught.value, ServiceError)
    assert caught.value.field == field
    message = str(caught.value)
    assert message.startswith(f"{field}: ")
    assert "\n" not in message


# -- properties -----------------------------------------------------------------------------

# hypothesis bounds are naive; the drawn values are UTC
_afters = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001
    max_value=datetime(2037, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)
_daily = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.integers(0, 59))
_schedules = st.one_of(
    st.tuples(_daily, st.none()),
    st.tuples(st.none(), st.sampled_from(CRONS)),
)


@settings(max_examples=150, deadline=None)
@given(after=_afters, when=_schedules, zone=st.sampled_from(ZONES))
def test_next_due_is_the_first_due_time_strictly_after(
    after: datetime, when: tuple[str | None, str | None], zone: str
) -> None:
    daily_at, cron = when
    due = next_due(after, daily_at=daily_at, cron=cron, timezone=zone)
    assert due > after
    assert due.tzinfo is UTC
    # nothing due in between: the last due time before it is at or before ``after``
    assert latest_due(due, daily_at=daily_at, cron=cron, timezone=zone) == due
    earlier = latest_due(
        due - timedelta(microseconds=1), daily_at=daily_at, cron=cron, timezone=zone
    )
    assert earlier <= after


@settings(max_examples=150, deadline=None)
@given(after=_afters, daily_at=_daily, zone=st.sampled_from(ZONES))
@example(after=datetime(2018, 9, 29, 0, 0, tzinfo=UTC), daily_at="02:45", zone="Pacific/Chatham")
def test_daily_due_times_are_one_local_day_apart(after: datetime, daily_at: str, zone: str) -> None:
    tz = ZoneInfo(zone)
    first = next_due(after, daily_at=daily_at, cron=None, timezone=zone)
    second = next_due(first, daily_at=daily_at, cron=None, timezone=zone)
    assert _wall(second, zone).date() == _wall(first, zone).date() + timedelta(days=1)
    hour, minute = map(int, daily_at.split(":"))
    on_time = all(
        (_wall(d, zone).hour, _wall(d, zone).minute) == (hour, minute) for d in (first, second)
    )
    if on_time and first.astimezone(tz).utcoffset() == second.astimezone(tz).utcoffset():
        assert second - first == timedelta(days=1)
    else:  # across a DST change, or from the end of a skipped stretch (Pacific/Chatham's
        # 02:45, 2018-09-30): a day of wall time, 23 or 25 hours (or so) of real time
        assert timedelta(hours=22) <= second - first <= timedelta(hours=26)
    # at the local time itself whenever the clocks do not skip it
    for due in (first, second):
        wall = _wall(due, zone)
        if (wall.hour, wall.minute) != (hour, minute):
            naive = wall.replace(hour=hour, minute=minute)
            assert _wall(naive.replace(tzinfo=tz).astimezone(UTC), zone) != naive  # skipped


@settings(max_examples=100, deadline=None)
@given(after=_afters, cron=st.sampled_from(CRONS), zone=st.sampled_from(ZONES))
def test_cron_due_times_match_the_expression_where_the_wall_time_exists(
    after: datetime, cron: str, zone: str
) -> None:
    due = next_due(after, daily_at=None, cron=cron, timezone=zone)
    wall = _wall(due, zone)
    # a due time off the expression is only ever the end of a skipped stretch of wall time
    if not croniter.match(cron, wall):
        before = _wall(due - timedelta(seconds=1), zone)
        assert wall - before > timedelta(seconds=1)
