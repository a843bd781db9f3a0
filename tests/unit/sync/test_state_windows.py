"""Bookmarks and time windows: pure functions, so every edge is checked directly."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kbridge.sync.state import (
    EPOCH_FLOOR,
    advance,
    cursor_filter,
    format_ts,
    join_filters,
    max_cursor,
    resume_from,
)
from kbridge.sync.streams import Cursor
from kbridge.sync.windows import plan_windows

pytestmark = pytest.mark.unit

INCLUSIVE = Cursor("datetime", "datetime", inclusive=True, sort="datetime")
EXCLUSIVE = Cursor("updated", "updated", inclusive=False, sort="updated")


def test_resume_prefers_the_bookmark_then_the_start_date() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    assert resume_from({"bookmark": "2025-03-01T00:00:00+00:00"}, start, full_refresh=False) == (
        "2025-03-01T00:00:00+00:00"
    )
    assert resume_from(None, start, full_refresh=False) == "2024-01-01T00:00:00+00:00"
    assert resume_from({"bookmark": None}, None, full_refresh=False) is None
    # a full refresh ignores the bookmark but still honours the start date
    assert resume_from({"bookmark": "2025-03-01T00:00:00+00:00"}, start, full_refresh=True) == (
        "2024-01-01T00:00:00+00:00"
    )


def test_the_lookback_starts_behind_the_bookmark_but_never_before_the_start_date() -> None:
    state = {"bookmark": "2025-03-08T12:00:00+00:00"}
    week = timedelta(days=7)
    assert resume_from(state, None, full_refresh=False, lookback=week) == (
        "2025-03-01T12:00:00+00:00"
    )
    late_start = datetime(2025, 3, 5, tzinfo=UTC)
    assert resume_from(state, late_start, full_refresh=False, lookback=week) == (
        "2025-03-05T00:00:00+00:00"
    )
    # no bookmark yet: a first run has nothing to look back from
    assert resume_from(None, late_start, full_refresh=False, lookback=week) == (
        "2025-03-05T00:00:00+00:00"
    )
    assert resume_from({"bookmark": "2012-01-02T00:00:00+00:00"}, None, full_refresh=False,
                       lookback=week) == format_ts(EPOCH_FLOOR)  # fmt: skip


def test_inclusive_cursors_ask_greater_or_equal() -> None:
    assert cursor_filter(INCLUSIVE, "2025-01-01T00:00:00Z") == (
        "greater-or-equal(datetime,2025-01-01T00:00:00+00:00)"
    )


def test_greater_than_only_cursors_step_back_one_second_so_ties_are_refetched() -> None:
    assert cursor_filter(EXCLUSIVE, "2025-01-01T00:00:00+00:00") == (
        "greater-than(updated,2024-12-31T23:59:59+00:00)"
    )


def test_windows_are_bounded_above_and_filters_join_with_commas() -> None:
    assert cursor_filter(INCLUSIVE, None, "2025-02-01T00:00:00+00:00") == (
        "less-than(datetime,2025-02-01T00:00:00+00:00)"
    )
    assert cursor_filter(INCLUSIVE, None) is None
    assert join_filters(["equals(a,1)", None, "less-than(b,2)"]) == "equals(a,1),less-than(b,2)"


def test_bookmarks_compare_as_instants_and_never_move_back() -> None:
    assert max_cursor(["2025-01-01T10:00:00+02:00", "2025-01-01T09:00:00Z", None]) == (
        "2025-01-01T09:00:00+00:00"
    )
    assert advance("2025-05-01T00:00:00+00:00", "2025-04-01T00:00:00+00:00") == (
        "2025-05-01T00:00:00+00:00"
    )
    assert advance(None, None) is None


def test_windows_cover_the_range_without_gaps_and_align_to_the_grid() -> None:
    lower = datetime(2024, 1, 15, 12, tzinfo=UTC)
    upper = datetime(2024, 6, 1, tzinfo=UTC)
    windows = plan_windows(lower, upper, 30)
    assert windows[0].start == lower
    assert windows[-1].end == upper
    assert all(a.end == b.start for a, b in itertools.pairwise(windows))
    assert all((w.start - EPOCH_FLOOR) % timedelta(days=30) == timedelta(0) for w in windows[1:])
    assert plan_windows(upper, upper, 30) == []


def test_a_resumed_plan_keeps_the_same_window_names_and_only_grows_the_last() -> None:
    lower = datetime(2024, 1, 15, tzinfo=UTC)
    before = plan_windows(lower, datetime(2024, 5, 3, tzinfo=UTC), 30)
    after = plan_windows(lower, datetime(2024, 5, 20, tzinfo=UTC), 30)
    assert [w.name for w in before] == [w.name for w in after[: len(before)]]
    assert [w.end for w in before[:-1]] == [w.end for w in after[: len(before) - 1]]


@given(
    st.datetimes(min_value=datetime(2012, 1, 1), max_value=datetime(2030, 1, 1)),  # noqa: DTZ001
    st.integers(min_value=0, max_value=2000 * 86400),
    st.integers(min_value=1, max_value=90),
)
def test_windows_partition_any_range(lower_naive: datetime, span: int, days: int) -> None:
    lower = lower_naive.replace(tzinfo=UTC)
    upper = lower + timedelta(seconds=span)
    windows = plan_windows(lower, upper, days)
    if span == 0:
        assert windows == []
        return
    assert windows[0].start == lower
    assert windows[-1].end == upper
    for a, b in itertools.pairwise(windows):
        assert a.end == b.start
    assert all(timedelta(0) < w.end - w.start <= timedelta(days=days) for w in windows)


def test_report_requests_read_new_days_first_and_share_a_span_with_the_reread() -> None:
    from kbridge.sync.strategies.reports import report_windows as _report_windows

    def d(n: int) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=n)

    one = timedelta(days=1)
    # values reports, a day a request: the two new days, then the two read again
    assert _report_windows(d(5), d(7), d(3), one) == [
        (d(5), d(6)), (d(6), d(7)), (d(3), d(4)), (d(4), d(5))
    ]  # fmt: skip
    assert _report_windows(d(5), d(7), d(5), one) == [(d(5), d(6)), (d(6), d(7))]
    # series, 60 days a request: a week re-read and today's new day are one request
    assert _report_windows(d(65), d(66), d(58), 60 * one) == [(d(58), d(66))]
    # a backfill longer than a span: new spans first, the re-read after
    assert _report_windows(d(70), d(75), d(63), 10 * one) == [(d(70), d(75)), (d(63), d(70))]


def test_report_progress_says_the_day_reached_and_the_time_left() -> None:
    from kbridge.sync.windows import ReportProgress

    def text(day: int, left: int, seconds: float | None, deferred: int = 0) -> str:
        return ReportProgress("campaign_values_daily", day, 365, left, seconds, deferred).text

    assert text(120, 18, 18 * 30.0) == "day 120 of 365, ~9 min left"
    assert text(120, 18, 18 * 30.0 + 1) == "day 120 of 365, ~10 min left"  # rounded up
    assert text(0, 225, 225 * 31.58) == "day 0 of 365, ~1 h 59 min left"
    assert text(0, 120, 7200.0) == "day 0 of 365, ~2 h left"
    assert text(364, 1, 0.5) == "day 364 of 365, ~1 min left"
    assert text(3, 2, None) == "day 3 of 365"  # unpaced, before the first request
    assert text(365, 0, 0.0) == "day 365 of 365, done"
    assert text(225, 0, 0.0, 140) == "day 225 of 365, 140 days after the daily cap resets"
    assert text(5, 220, 6600.0, 140) == (
        "day 5 of 365, ~1 h 50 min left, 140 days after the daily cap resets"
    )
