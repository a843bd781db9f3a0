"""``kbridge sync`` option parsing that needs no server."""

from __future__ import annotations

import pytest

from kbridge.cli.sync import parse_every
from kbridge.core import ConfigurationError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "seconds"), [("24h", 86400), ("30m", 1800), ("1d", 86400), ("90s", 90), ("1.5h", 5400)]
)
def test_intervals(text: str, seconds: float) -> None:
    assert parse_every(text) == seconds


@pytest.mark.parametrize(("text", "message"), [("10s", "at least 1m"), ("daily", "like 24h")])
def test_bad_intervals_name_the_option(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        parse_every(text)
    assert str(info.value).startswith("--every")


def test_results_report_their_share_of_the_rate_limit() -> None:
    from kbridge.sync import StreamResult

    r = StreamResult("events", records=30_000, pages=30, seconds=60.0, steady_per_minute=60)
    assert r.budget_used == 0.5
    assert r.to_dict()["rate_budget_pct"] == 50.0
    assert r.to_dict()["records_per_second"] == 500.0
    assert StreamResult("tags").to_dict()["rate_budget_pct"] is None
    # two report requests half a minute apart are the burst allowance, not 190 % of 2/min
    two = StreamResult("campaign_values_daily", pages=2, seconds=31.6, steady_per_minute=2)
    assert two.budget_used is None


@pytest.mark.parametrize(
    ("pages", "seconds", "share"),
    [
        (200, 14.0, 200 / 750),  # within its first minute: a whole minute's 750 was allowed
        (750, 30.0, 1.0),  # the minute's steady limit spent in half a minute, at burst speed
        (150, 2.0, 1.0),  # the burst limit, 75 a second, for two seconds
        (1350, 120.0, 0.9),  # beyond a minute: the steady limit × minutes
    ],
)
def test_the_share_is_of_what_the_limits_allowed_in_the_time_taken(
    pages: int, seconds: float, share: float
) -> None:
    from kbridge.sync import StreamResult

    r = StreamResult("profiles", pages=pages, seconds=seconds, steady_per_minute=750,
                     burst_per_second=75)  # fmt: skip
    assert r.budget_used == pytest.approx(share)


@pytest.mark.parametrize(
    ("text", "days"), [("7d", 7.0), ("12h", 0.5), ("0", 0.0), ("30m", 1 / 48), ("0d", 0.0)]
)
def test_lookback_durations(text: str, days: float) -> None:
    from kbridge.cli.sync import parse_lookback

    assert parse_lookback(text).total_seconds() == pytest.approx(days * 86400)


def test_a_bad_lookback_names_the_option() -> None:
    from kbridge.cli.sync import parse_lookback

    with pytest.raises(ConfigurationError, match=r"^--lookback: 'a week'"):
        parse_lookback("a week")


def test_the_live_budget_compares_records_per_second_with_full_pages_at_the_steady_limit() -> None:
    from kbridge.cli.sync import budget_text, ceiling_per_second

    # GET /api/events: 3,500 requests a minute of up to 1,000 events
    assert ceiling_per_second("events") == pytest.approx(3500 * 1000 / 60)
    assert budget_text("events", 3500 * 1000 / 60 * 0.95) == "95 % of ceiling"
    # GET /api/profiles: 750 a minute of up to 100
    assert budget_text("profiles", 625.0) == "50 % of ceiling"
    assert budget_text("profiles", None) == ""
    assert ceiling_per_second("campaign_values_daily") is None  # a report: no pages of records
    assert budget_text("campaign_values_daily", 3.0) == ""


def test_the_live_budget_uses_the_limits_the_client_paces_to() -> None:
    from kbridge.api import LimiterConfig
    from kbridge.api.ratelimit import RateLimiter
    from kbridge.cli.sync import budget_text, ceiling_per_second
    from kbridge.core import ManualClock

    scaled = RateLimiter(clock=ManualClock(), config=LimiterConfig(limit_factor=0.05))
    assert ceiling_per_second("events", scaled) == pytest.approx(175 * 1000 / 60)
    assert budget_text("events", 175 * 1000 / 60 / 2, scaled) == "50 % of ceiling"
    unpaced = RateLimiter(clock=ManualClock(), config=LimiterConfig(limit_factor=None))
    assert ceiling_per_second("events", unpaced) is None
    assert budget_text("events", 90_000.0, unpaced) == ""  # no ceiling to be a share of
