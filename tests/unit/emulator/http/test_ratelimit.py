from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from datetime import date
from typing import Literal

import pytest

from kbridge import catalog
from kbridge.emulator.http.ratelimit import RateDecision, RateLimiter, scaled_limit

pytestmark = pytest.mark.unit

PROFILES = catalog.get("get_profiles")  # 75/s, 750/m; predictive_analytics 10/s, 150/m
PROFILE = catalog.get("get_profile")  # include=lists / include=segments 1/s, 15/m
ACCOUNTS = catalog.get("get_accounts")  # 1/s, 15/m
REPORT = catalog.get("query_campaign_values")  # 1/s, 2/m, 225/d
PREDICTIVE = [("additional-fields[profile]", "predictive_analytics")]


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.day: date | str = date(2026, 1, 1)
        self.to_midnight = 3600.0

    def limiter(
        self,
        factor: float | None = 1.0,
        algorithm: Literal["fixed-window", "leaky-bucket"] = "fixed-window",
        **kw: object,
    ) -> RateLimiter:
        return RateLimiter(
            factor=factor,
            algorithm=algorithm,
            monotonic=lambda: self.now,
            day_of=lambda: self.day,
            **kw,  # type: ignore[arg-type]
        )


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


def admitted(
    limiter: RateLimiter,
    n: int,
    op: catalog.Operation = PROFILES,
    query: list[tuple[str, str]] | None = None,
    bucket: str = "acct",
) -> int:
    return sum(limiter.check(bucket, op, query).allowed for _ in range(n))


# ------------------------------------------------------------------ fixed windows


def test_burst_refuses_the_76th_request_in_a_second(clock: FakeTime) -> None:
    limiter = clock.limiter()
    decisions = [limiter.check("acct", PROFILES) for _ in range(76)]
    assert all(d.allowed for d in decisions[:75])
    refused = decisions[75]
    assert refused == RateDecision(False, 1, {"Retry-After": "1"}, window="burst")
    clock.now = 1.0
    assert limiter.check("acct", PROFILES).allowed


def test_steady_refuses_the_751st_request_in_a_minute(clock: FakeTime) -> None:
    limiter = clock.limiter()
    for second in range(10):
        clock.now = second + 0.5
        assert admitted(limiter, 75) == 75
    clock.now = 10.5
    refused = limiter.check("acct", PROFILES)
    assert not refused.allowed
    assert refused.window == "steady"
    assert refused.retry_after == 50  # the minute frees at t=60; ceil(49.5)
    assert refused.headers == {"Retry-After": "50"}
    clock.now = 60.0
    assert limiter.check("acct", PROFILES).allowed


@pytest.mark.parametrize(
    ("at", "expected"), [(10.0, 50), (30.25, 30), (59.0, 1), (59.999, 1), (12.000001, 48)]
)
def test_retry_after_is_the_ceiling_of_the_wait_for_the_window(
    clock: FakeTime, at: float, expected: int
) -> None:
    limiter = clock.limiter()
    clock.now = 0.0
    assert admitted(limiter, 15, ACCOUNTS) == 1
    for second in range(1, 15):
        clock.now = float(second)
        assert admitted(limiter, 1, ACCOUNTS) == 1
    clock.now = at
    decision = limiter.check("acct", ACCOUNTS)
    assert decision.retry_after == expected
    assert decision.window == "steady"


def test_allowed_requests_describe_the_steady_window(clock: FakeTime) -> None:
    limiter = clock.limiter()
    clock.now = 120.0
    first = limiter.check("acct", PROFILES)
    assert first == RateDecision(
        True,
        None,
        {"RateLimit-Limit": "750", "RateLimit-Remaining": "749", "RateLimit-Reset": "60"},
    )
    clock.now = 132.3
    second = limiter.check("acct", PROFILES)
    assert second.headers["RateLimit-Remaining"] == "748"
    assert second.headers["RateLimit-Reset"] == "48"


def test_windows_header_format_lists_every_window(clock: FakeTime) -> None:
    limiter = clock.limiter(header_format="windows")
    headers = limiter.check("acct", REPORT).headers
    assert headers["RateLimit-Limit"] == "1;w=1, 2;w=60, 225;w=86400"


def test_buckets_do_not_share_quota(clock: FakeTime) -> None:
    limiter = clock.limiter()
    assert admitted(limiter, 80, bucket="account-a") == 75
    assert admitted(limiter, 80, bucket="account-b") == 75


def test_operations_have_their_own_windows_unless_grouped_by_tier(clock: FakeTime) -> None:
    other_l_tier = catalog.get("get_lists")
    assert other_l_tier.rate_limit == PROFILES.rate_limit
    by_op = clock.limiter()
    assert admitted(by_op, 75) == 75
    assert admitted(by_op, 75, other_l_tier) == 75
    by_tier = clock.limiter(group_by="tier")
    assert admitted(by_tier, 50) == 50
    assert admitted(by_tier, 50, other_l_tier) == 25


# ------------------------------------------------------------------ scaling and off


def test_factor_scales_every_limit_rounding_down_with_a_floor_of_one(clock: FakeTime) -> None:
    assert scaled_limit(750, 0.1) == 75
    assert scaled_limit(100, 0.29) == 29  # 28.999999999999996 in floating point
    assert scaled_limit(75, 0.5) == 37
    assert scaled_limit(2, 0.01) == 1
    limiter = clock.limiter(factor=0.1)
    assert admitted(limiter, 20) == 7
    assert limiter.limits_for(PROFILES) == catalog.RateLimit(7, 75)
    assert limiter.check("acct", ACCOUNTS).allowed
    clock.now = 1.0
    assert clock.limiter(factor=0.001).limits_for(REPORT) == catalog.RateLimit(1, 1, 1)
    doubled = clock.limiter(factor=2.0)
    assert admitted(doubled, 200) == 150
    assert doubled.check("acct", ACCOUNTS).headers["RateLimit-Limit"] == "30"


@pytest.mark.parametrize("factor", [0.0, -1.0, float("nan"), float("inf")])
def test_nonsense_factors_are_refused(clock: FakeTime, factor: float) -> None:
    with pytest.raises(ValueError, match="factor"):
        clock.limiter(factor=factor)


def test_off_allows_everything_and_still_publishes_the_spec_limits(clock: FakeTime) -> None:
    limiter = clock.limiter(factor=None)
    assert not limiter.enabled
    clock.now = 30.0
    assert admitted(limiter, 5000, REPORT) == 5000
    headers = limiter.check("acct", PROFILES).headers
    assert headers == {
        "RateLimit-Limit": "750",
        "RateLimit-Remaining": "750",
        "RateLimit-Reset": "30",
    }


# ------------------------------------------------------------------ extra limits


def test_query_parameter_limits_are_consumed_with_the_operations_own(clock: FakeTime) -> None:
    limiter = clock.limiter()
    assert admitted(limiter, 12, query=PREDICTIVE) == 10
    refused = limiter.check("acct", PROFILES, PREDICTIVE)
    assert refused.window == "burst"
    # the ten admitted ones spent the operation's own burst too; the refused ones did not
    assert admitted(limiter, 100) == 65


def test_query_parameter_limit_matches_inside_a_comma_list(clock: FakeTime) -> None:
    limiter = clock.limiter()
    query = [("additional-fields[profile]", "subscriptions, predictive_analytics")]
    assert admitted(limiter, 12, query=query) == 10
    assert admitted(limiter, 5, query=[("additional-fields[profile]", "subscriptions")]) == 5


def test_each_variant_is_its_own_extra_bucket(clock: FakeTime) -> None:
    limiter = clock.limiter()
    assert admitted(limiter, 3, PROFILE, [("include", "lists")]) == 1
    assert admitted(limiter, 3, PROFILE, [("include", "segments")]) == 1
    assert admitted(limiter, 3, PROFILE, [("include", "lists,segments")]) == 0
    assert admitted(limiter, 3, PROFILE) == 3


def test_daily_cap_refuses_until_the_simulated_day_changes(clock: FakeTime) -> None:
    limiter = clock.limiter(factor=0.02, seconds_to_next_day=lambda: clock.to_midnight)
    assert limiter.limits_for(REPORT) == catalog.RateLimit(1, 1, 4)
    for minute in range(4):
        clock.now = 60.0 * minute
        assert limiter.check("acct", REPORT).allowed
    clock.now = 240.0
    clock.to_midnight = 1234.5
    refused = limiter.check("acct", REPORT)
    assert refused == RateDecision(
        False, 1235, {"Retry-After": "1235"}, window="daily", daily_exhausted=True
    )
    clock.day = date(2026, 1, 2)
    assert limiter.check("acct", REPORT).allowed  # the refusal consumed no window


def test_daily_refusal_without_a_day_clock_reports_a_full_day(clock: FakeTime) -> None:
    clock.day = "2026-01-01"
    limiter = clock.limiter(factor=0.001)
    assert limiter.check("acct", REPORT).allowed
    clock.now = 60.0
    refused = limiter.check("acct", REPORT)
    assert refused.daily_exhausted
    assert refused.retry_after == 86_400


def test_binding_window_is_the_one_that_frees_last(clock: FakeTime) -> None:
    limiter = clock.limiter(factor=0.001)  # report: 1/s, 1/m, 1/d
    assert limiter.check("acct", REPORT).allowed
    clock.now = 0.5
    refused = limiter.check("acct", REPORT)
    assert (refused.window, refused.daily_exhausted, refused.retry_after) == ("daily", True, 86_400)


def test_reset_forgets_every_window(clock: FakeTime) -> None:
    limiter = clock.limiter()
    assert admitted(limiter, 80) == 75
    limiter.reset()
    assert admitted(limiter, 80) == 75


# ------------------------------------------------------------------ leaky bucket


def test_leaky_bucket_refuses_beyond_capacity_then_drains_at_the_rate(clock: FakeTime) -> None:
    limiter = clock.limiter(algorithm="leaky-bucket")
    assert admitted(limiter, 80) == 75
    refused = limiter.check("acct", PROFILES)
    assert (refused.window, refused.retry_after) == ("burst", 1)
    clock.now = 1 / 75
    assert admitted(limiter, 3) == 1  # exactly one slot has drained


def test_leaky_bucket_admits_a_trickle_at_exactly_the_steady_rate(clock: FakeTime) -> None:
    limiter = clock.limiter(algorithm="leaky-bucket")
    for k in range(3000):  # 750/min = one request every 80 ms, for four minutes
        clock.now = k * 0.08
        assert limiter.check("acct", PROFILES).allowed, k


def test_leaky_bucket_counts_debt_exactly(clock: FakeTime) -> None:
    # 15/min drains one request every 4 s; a request every 2 s adds 2 s of debt each time
    # and the 60 s bucket overflows at the 30th.
    limiter = clock.limiter(algorithm="leaky-bucket")
    results: list[RateDecision] = []
    for k in range(30):
        clock.now = 2.0 * k
        results.append(limiter.check("acct", ACCOUNTS))
    assert all(d.allowed for d in results[:29])
    assert (results[29].allowed, results[29].window, results[29].retry_after) == (
        False,
        "steady",
        2,
    )
    assert results[0].headers == {
        "RateLimit-Limit": "15",
        "RateLimit-Remaining": "14",
        "RateLimit-Reset": "4",
    }
    clock.now = 60.0
    assert limiter.check("acct", ACCOUNTS).allowed


# ------------------------------------------------------------------ concurrency


@pytest.fixture
def eager_thread_switching() -> Iterator[None]:
    """Switch threads as often as the interpreter can, so a missing lock shows."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


@pytest.mark.usefixtures("eager_thread_switching")
@pytest.mark.parametrize("algorithm", ["fixed-window", "leaky-bucket"])
def test_concurrent_checks_never_over_admit(
    clock: FakeTime, algorithm: Literal["fixed-window", "leaky-bucket"]
) -> None:
    limiter = clock.limiter(algorithm=algorithm)
    per_window: list[int] = []
    # mid-window for fixed windows; whole seconds for GCRA (exactly one burst drained)
    offset = 0.5 if algorithm == "fixed-window" else 0.0
    for second in range(3):
        clock.now = second + offset
        counts = [0] * 8
        start = threading.Barrier(8)

        def hammer(slot: int, counts: list[int] = counts, start: threading.Barrier = start) -> None:
            start.wait()
            for _ in range(60):
                if limiter.check("acct", PROFILES).allowed:
                    counts[slot] += 1

        threads = [threading.Thread(target=hammer, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        per_window.append(sum(counts))
    assert per_window == [75, 75, 75]
