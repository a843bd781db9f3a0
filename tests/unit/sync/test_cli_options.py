"""``kbridge sync`` option parsing that needs no server."""

from __future__ import annotations

import math

import pytest

from kbridge import catalog
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


def test_results_report_their_share_of_the_rate_budget() -> None:
    from kbridge.sync import StreamResult

    r = StreamResult("events", records=30_000, pages=30, seconds=60.0, budget_rate=1.0)
    assert r.budget_used == 0.5
    assert r.to_dict()["rate_budget_pct"] == 50.0
    assert r.to_dict()["records_per_second"] == 500.0
    assert StreamResult("tags").to_dict()["rate_budget_pct"] is None
    # two report requests half a minute apart: too few to say anything
    two = StreamResult("campaign_values_daily", pages=2, seconds=31.6, budget_rate=2 / 60)
    assert two.budget_used is None


def test_a_stream_at_its_pace_reads_100_percent_however_short() -> None:
    from kbridge.api import LimiterConfig
    from kbridge.api.ratelimit import RateLimiter
    from kbridge.core import ManualClock
    from kbridge.sync import StreamResult

    limiter = RateLimiter(clock=ManualClock(), config=LimiterConfig())
    # GET /api/profiles, 75/s and 750/m: 95 % of the steady limit after a first burst of 34
    # (what 750 a minute leaves beside that rate, less a margin for network jitter)
    pace = limiter.pace(catalog.get("get_profiles"))
    assert pace == (pytest.approx(0.95 * 750 / 60), 34)
    rate, burst = pace
    for seconds in (2.0, 14.1, 60.0, 600.0):
        sent = math.floor(burst + rate * seconds)  # all that the pacing let through
        r = StreamResult("profiles", pages=sent, seconds=seconds, budget_rate=rate,
                         budget_burst=burst)  # fmt: skip
        assert r.budget_used == pytest.approx(1.0, abs=0.02)  # less the floor's part
        half = StreamResult("profiles", pages=sent // 2, seconds=seconds, budget_rate=rate,
                            budget_burst=burst)  # fmt: skip
        assert half.budget_used == pytest.approx(0.5, abs=0.02)
    # profiles with predictive analytics use the stricter 10/s, 150/m tier
    slow = limiter.pace(
        catalog.get("get_profiles"), {"additional-fields[profile]": "predictive_analytics"}
    )
    assert slow is not None
    assert slow[0] == pytest.approx(0.95 * 150 / 60)
    assert (
        RateLimiter(clock=ManualClock(), config=LimiterConfig(limit_factor=None)).pace(
            catalog.get("get_profiles")
        )
        is None
    )  # unpaced: no budget


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


def test_a_run_at_the_windows_pace_reads_100_percent_short_or_long() -> None:
    from kbridge.api import LimiterConfig
    from kbridge.api.ratelimit import RateLimiter
    from kbridge.core import ManualClock
    from kbridge.sync import StreamResult

    # GET /api/profiles at --rate-limits 0.04: 3/s, 30/min
    limiter = RateLimiter(clock=ManualClock(), config=LimiterConfig(limit_factor=0.04))
    op = catalog.get("get_profiles")
    pace = limiter.pace(op)
    assert pace is not None
    for seconds, sent in ((2.0, 9), (9.0, 30), (60.0, 33), (183.0, 102)):
        allowed = limiter.allowance(op, None, seconds)
        assert allowed == sent  # what the sliding windows let through in that time
        r = StreamResult("profiles", pages=sent, seconds=seconds, budget_rate=pace[0],
                         budget_burst=pace[1], budget_allowed=allowed)  # fmt: skip
        assert r.budget_used == pytest.approx(1.0, abs=0.02)
    unpaced = RateLimiter(clock=ManualClock(), config=LimiterConfig(limit_factor=None))
    assert unpaced.allowance(op, None, 9.0) is None


def test_the_summary_says_when_pacing_fell_back_to_a_token_bucket(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from kbridge.cli.sync import _report
    from kbridge.sync import StreamResult, SyncResult

    result = SyncResult("acct", {"profiles": StreamResult("profiles", pages=3, seconds=2.0)})
    _report(result, False, ())
    assert "pacing" not in capsys.readouterr().out
    _report(result, False, ("get_profiles",))
    out = capsys.readouterr().out
    assert "pacing: a 429 the documented windows did not predict (get_profiles)" in out
    assert "paced as a token bucket" in out
