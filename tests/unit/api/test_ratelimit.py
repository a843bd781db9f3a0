"""The limiter: window invariants at every alignment, throughput, adaptation, daily caps."""

from __future__ import annotations

import asyncio
import itertools
import math

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kbridge.api import ClientConfig, LimiterConfig, QuotaExhaustedError, RateLimiter
from kbridge.api.ratelimit import (
    Permit,
    pacing,
    parse_limit_factor,
    parse_rate_limit_header,
    window_allowance,
)
from kbridge.catalog import Operation, RateLimit, get
from kbridge.core import ConfigurationError, ManualClock

from ._support import Server, client, error, jsonapi, max_in_window

pytestmark = pytest.mark.unit

ACCOUNT = "key-test"


async def _burst(n: int, params: dict[str, str] | None = None) -> tuple[list[float], Server]:
    clock = ManualClock()
    server = Server(clock, respond=lambda _: jsonapi(200, {"data": []}))
    async with client(server) as api:
        await asyncio.gather(*(api.request("get_profiles", params=params) for _ in range(n)))
    return server.times, server


@pytest.mark.anyio
async def test_200_concurrent_calls_are_shaped_to_the_tier() -> None:
    times, _ = await _burst(200)
    assert len(times) == 200
    assert max_in_window(times, 1.0) <= 75
    assert max_in_window(times, 60.0) <= 750
    # The burst window sets the pace of a short run: 75 a second, not 95 % of 750 a minute
    # spread from the first request (which took 14 s for these 200).
    assert sorted(times)[::75] == [0.0, pytest.approx(1.0), pytest.approx(2.0)]
    assert max(times) == pytest.approx(2.0)


@pytest.mark.anyio
async def test_a_long_run_fills_but_never_overruns_the_minute_window() -> None:
    times, _ = await _burst(1600)
    assert max_in_window(times, 1.0) <= 75
    assert max_in_window(times, 60.0) <= 750
    # Any full minute after the start carries at least 90 % of the steady ceiling.
    assert sum(1 for t in times if 60.0 <= t < 120.0) >= 0.9 * 750


@pytest.mark.anyio
async def test_alt_limit_parameter_consumes_its_stricter_bucket() -> None:
    times, server = await _burst(40, {"additional-fields[profile]": "predictive_analytics"})
    assert max_in_window(times, 1.0) <= 10
    assert max_in_window(times, 60.0) <= 150
    assert server.requests[0].url.params["additional-fields[profile]"] == "predictive_analytics"


@pytest.mark.anyio
async def test_tier_grouping_shares_one_bucket_among_same_limit_operations() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock=clock, config=LimiterConfig(grouping="tier"))
    for op_id in ("get_profiles", "get_lists", "get_profiles"):
        permit = await limiter.acquire(ACCOUNT, get(op_id))
        permit.finish(200)
    state = limiter.state(ACCOUNT, "75/s,750/m")
    assert state is not None
    assert state.daily_used == 3
    assert limiter.state(ACCOUNT, "get_profiles") is None


@pytest.mark.anyio
async def test_429_pauses_for_retry_after_and_halves_the_rate_then_recovers() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock=clock)
    op = get("get_profiles")
    permit = await limiter.acquire(ACCOUNT, op)
    base = limiter.state(ACCOUNT, "get_profiles")
    assert base is not None
    permit.finish(429, {"Retry-After": "5"})  # the windows' 429: fall back, at the full rate
    fell = limiter.state(ACCOUNT, "get_profiles")
    assert fell is not None
    assert (fell.mode, fell.rate_factor, fell.paused_until) == ("token-bucket", 1.0, 5.0)
    permit = await limiter.acquire(ACCOUNT, op)
    assert clock.monotonic() == pytest.approx(5.0)  # waited out the pause, no earlier
    permit.finish(429, {"Retry-After": "5"})  # the token bucket's own 429: halve
    cut = limiter.state(ACCOUNT, "get_profiles")
    assert cut is not None
    assert cut.rate_factor == 0.5
    assert cut.rate == pytest.approx(base.rate / 2)
    assert cut.paused_until == 10.0
    await limiter.acquire(ACCOUNT, op)
    assert clock.monotonic() == pytest.approx(10.0)
    clock.advance(10)
    recovered = limiter.state(ACCOUNT, "get_profiles")
    assert recovered is not None
    assert recovered.rate_factor == pytest.approx(0.6)  # +0.01/s additive recovery
    clock.advance(100)
    full = limiter.state(ACCOUNT, "get_profiles")
    assert full is not None
    assert full.rate_factor == 1.0


@pytest.mark.anyio
async def test_simultaneous_429s_cut_the_rate_once() -> None:
    limiter = RateLimiter(clock=ManualClock())
    op = get("get_profiles")
    for factor in (1.0, 0.5):  # the first round falls back to the token bucket, uncut
        permits = [await limiter.acquire(ACCOUNT, op) for _ in range(5)]
        for p in permits:
            p.finish(429, {"Retry-After": "1"})
        state = limiter.state(ACCOUNT, "get_profiles")
        assert state is not None
        assert state.rate_factor == factor


@pytest.mark.anyio
async def test_429_slows_the_pipeline_after_the_pause() -> None:
    clock = ManualClock()
    replies = [error(429, headers={"Retry-After": "3"})] + [jsonapi(200, {"data": []})] * 100
    server = Server(clock, replies)
    async with client(server) as api:
        await api.request("get_profiles")
        await asyncio.gather(*(api.request("get_profiles") for _ in range(60)))
    after = server.times[2:]
    gaps = [b - a for a, b in itertools.pairwise(after)]
    rate, _ = pacing(RateLimit(75, 750), 0.95, 0.25)
    assert min(gaps) >= 1 / rate - 1e-9  # the token bucket after the 429: no burst, no faster


@pytest.mark.anyio
async def test_remaining_header_below_our_model_slows_us_down() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock=clock)
    op = get("get_profiles")
    permit = await limiter.acquire(ACCOUNT, op)
    permit.finish(
        200, {"RateLimit-Limit": "750;w=60", "RateLimit-Remaining": "2", "RateLimit-Reset": "30"}
    )
    for _ in range(2):
        (await limiter.acquire(ACCOUNT, op)).finish(200)
    assert clock.monotonic() == 0.0
    await limiter.acquire(ACCOUNT, op)  # the server's window has no room left: wait for its reset
    assert clock.monotonic() == pytest.approx(30.0)


@pytest.mark.anyio
async def test_remaining_counts_requests_still_in_flight() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock=clock)
    op = get("get_profiles")
    first = await limiter.acquire(ACCOUNT, op)
    await limiter.acquire(ACCOUNT, op)  # in flight, not yet counted by the server
    first.finish(200, {"RateLimit-Remaining": "1", "RateLimit-Reset": "12"})
    await limiter.acquire(ACCOUNT, op)
    assert clock.monotonic() == pytest.approx(12.0)


@pytest.mark.anyio
async def test_lower_limit_header_lowers_the_bucket() -> None:
    limiter = RateLimiter(clock=ManualClock())
    permit = await limiter.acquire(ACCOUNT, get("get_profiles"))
    permit.finish(200, {"RateLimit-Limit": "10;w=1, 100;w=60, 500;w=86400"})
    state = limiter.state(ACCOUNT, "get_profiles")
    assert state is not None
    assert state.limit == RateLimit(10, 100, 500)
    assert state.rate == pytest.approx(0.95 * 100 / 60)


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("750", [(750, None)]),
        ("750;w=60", [(750, 60)]),
        ("75;w=1, 750;w=60", [(75, 1), (750, 60)]),
        ("1;w=1, 2;w=60, 225;w=86400", [(1, 1), (2, 60), (225, 86400)]),
        ("garbage", []),
        (None, []),
    ],
)
def test_rate_limit_header_is_parsed_leniently(
    value: str | None, parsed: list[tuple[int, int | None]]
) -> None:
    assert parse_rate_limit_header(value) == parsed


@pytest.mark.anyio
async def test_daily_cap_counts_per_utc_day_and_resets_at_midnight() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock=clock)
    op = get("create_custom_metric")  # 1/s, 15/m, 15/d
    assert op.rate_limit.daily == 15
    for _ in range(15):
        (await limiter.acquire(ACCOUNT, op)).finish(201)
    with pytest.raises(QuotaExhaustedError) as caught:
        await limiter.acquire(ACCOUNT, op)
    assert caught.value.resets_at.isoformat() == "2026-01-02T00:00:00+00:00"
    assert "15" in str(caught.value)
    clock.set_now(caught.value.resets_at)
    (await limiter.acquire(ACCOUNT, op)).finish(201)


@pytest.mark.anyio
async def test_buckets_are_per_account() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock=clock)
    op = get("get_accounts")  # 1/s, 15/m: a single token
    await limiter.acquire("key-a", op)
    await limiter.acquire("key-b", op)
    assert clock.slept == []
    await limiter.acquire("key-a", op)
    assert clock.slept != []


def test_config_is_validated() -> None:
    with pytest.raises(ConfigurationError, match="target_utilisation"):
        LimiterConfig(target_utilisation=1.5)
    with pytest.raises(ConfigurationError, match="grouping"):
        LimiterConfig(grouping="account")  # type: ignore[arg-type]


@pytest.mark.parametrize("op", [get("get_profiles"), get("get_accounts"), get("query_flow_series")])
def test_pacing_of_real_tiers_stays_inside_both_windows(op: Operation) -> None:
    rate, capacity = pacing(op.rate_limit, 0.95, 0.25)
    assert capacity >= 1
    assert math.floor(capacity + 1.25 * rate) <= op.rate_limit.burst
    assert math.floor(capacity + 60.25 * rate) <= op.rate_limit.steady
    assert rate >= 0.9 * op.rate_limit.steady / 60


limits = st.tuples(st.integers(1, 400), st.integers(1, 4000)).map(
    lambda bs: RateLimit(burst=bs[0], steady=max(bs[1], bs[0]))
)


@given(limit=limits, target=st.floats(0.05, 1.0), jitter=st.floats(0, 2))
def test_pacing_bound_never_exceeds_either_window(
    limit: RateLimit, target: float, jitter: float
) -> None:
    rate, capacity = pacing(limit, target, jitter)
    assert capacity >= 1
    assert rate > 0
    assert math.floor(capacity + rate * (1 + jitter)) <= limit.burst
    assert math.floor(capacity + rate * (60 + jitter)) <= limit.steady


@settings(max_examples=40, deadline=None)
@given(
    limit=st.sampled_from(
        [RateLimit(75, 750), RateLimit(3, 60), RateLimit(1, 15), RateLimit(1, 2)]
    ),
    gaps=st.lists(st.floats(0, 5, allow_nan=False), min_size=1, max_size=120),
    target=st.floats(0.5, 1.0),
)
def test_any_arrival_pattern_respects_every_window(
    limit: RateLimit, gaps: list[float], target: float
) -> None:
    # Each response comes back the instant it is sent, so each request arrived then: the
    # windows themselves (1 s, 60 s) hold, at every alignment.
    op = Operation(
        method="GET",
        path="/api/x",
        operation_id="x",
        tag="t",
        rate_limit=limit,
        scopes=(),
        success_status=200,
        revision="r",
    )

    async def run() -> list[float]:
        clock = ManualClock()
        limiter = RateLimiter(clock=clock, config=LimiterConfig(target_utilisation=target))
        sent = []
        for gap in gaps:
            clock.advance(gap)
            (await limiter.acquire(ACCOUNT, op)).finish(200)
            sent.append(clock.monotonic())
        return sent

    sent = asyncio.run(run())
    assert max_in_window(sent, 1.0) <= limit.burst
    assert max_in_window(sent, 60.0) <= limit.steady


@pytest.mark.anyio
async def test_waiters_are_served_first_come_first_served() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock=clock)
    op = get("get_accounts")
    order: list[int] = []

    async def worker(i: int) -> None:
        await limiter.acquire(ACCOUNT, op)
        order.append(i)

    await asyncio.gather(*(worker(i) for i in range(8)))
    assert order == list(range(8))


@pytest.mark.anyio
async def test_transport_failure_releases_the_permit_without_adapting() -> None:
    server = Server(ManualClock(), [httpx.ConnectError("down"), jsonapi(200, {"data": []})])
    async with client(server) as api:
        await api.request("get_profiles")
        state = api.rate_limiter.state(api.account, "get_profiles")
    assert state is not None
    assert state.rate_factor == 1.0


@pytest.mark.anyio
async def test_the_daily_budget_counts_sends_honours_an_override_and_rolls_at_midnight() -> None:
    clock = ManualClock()  # 2026-01-01T00:00Z
    limiter = RateLimiter(clock=clock, config=LimiterConfig(daily_caps={"create_list": 3}))
    assert limiter.daily_budget("acct", get("get_profiles")) is None  # no daily cap
    reports = limiter.daily_budget("acct", get("query_campaign_values"))
    assert reports is not None
    assert (reports.cap, reports.remaining) == (225, 225)  # from the catalogue
    for _ in range(2):
        (await limiter.acquire("acct", get("create_list"))).finish(201)
    budget = limiter.daily_budget("acct", get("create_list"))
    assert budget is not None
    assert (budget.cap, budget.used, budget.remaining) == (3, 2, 1)
    assert budget.resets_at.isoformat() == "2026-01-02T00:00:00+00:00"
    (await limiter.acquire("acct", get("create_list"))).finish(201)
    with pytest.raises(QuotaExhaustedError):
        await limiter.acquire("acct", get("create_list"))
    clock.set_now(budget.resets_at)
    rolled = limiter.daily_budget("acct", get("create_list"))
    assert rolled is not None
    assert rolled.remaining == 3
    with pytest.raises(ConfigurationError):
        LimiterConfig(daily_caps={"create_list": -1})


# -- limit_factor: scaled limits, or none ------------------------------------------------


async def _send_times(config: LimiterConfig, n: int, op_id: str = "get_profiles") -> list[float]:
    clock = ManualClock()
    limiter = RateLimiter(clock=clock, config=config)
    sent = []
    for _ in range(n):
        (await limiter.acquire(ACCOUNT, get(op_id))).finish(200)
        sent.append(clock.monotonic())
    return sent


@pytest.mark.anyio
async def test_a_limit_factor_of_a_half_halves_the_pace() -> None:
    full = await _send_times(LimiterConfig(), 200)
    half = await _send_times(LimiterConfig(limit_factor=0.5), 200)
    # 75/s, 750/m × 0.5, floored: 37 a second where Klaviyo's limits allow 75
    assert (full.count(0.0), half.count(0.0)) == (75, 37)
    assert full[-1] == pytest.approx(2.0)  # 75 + 75 + 50
    assert half[-1] == pytest.approx(5.0)  # 5 × 37 + 15
    assert max_in_window(half, 1.0) <= 37
    assert max_in_window(half, 60.0) <= 375


@pytest.mark.anyio
async def test_a_limit_factor_scales_alt_and_default_limits_but_not_daily_caps() -> None:
    limiter = RateLimiter(clock=ManualClock(), config=LimiterConfig(limit_factor=0.5))
    predictive = {"additional-fields[profile]": "predictive_analytics"}
    (await limiter.acquire(ACCOUNT, get("get_profiles"), predictive)).finish(200)
    (await limiter.acquire(ACCOUNT, None)).finish(200)
    (await limiter.acquire(ACCOUNT, get("create_custom_metric"))).finish(201)  # 1/s, 15/m, 15/d
    states = {
        group: limiter.state(ACCOUNT, group)
        for group in (
            "get_profiles additional-fields[profile]=predictive_analytics",  # 10/s, 150/m
            "get_profiles",
            "unknown 1/s,15/m",  # bucket names stay the catalogue's
            "create_custom_metric",
        )
    }
    assert {g: s.limit if s else None for g, s in states.items()} == {
        "get_profiles additional-fields[profile]=predictive_analytics": RateLimit(5, 75),
        "get_profiles": RateLimit(37, 375),
        "unknown 1/s,15/m": RateLimit(1, 7),  # floor, and never below 1 a window
        "create_custom_metric": RateLimit(1, 7, 15),
    }
    assert all(s is not None and s.limit_factor == 0.5 for s in states.values())


@pytest.mark.anyio
async def test_without_limits_many_requests_over_the_burst_never_sleep() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock=clock, config=LimiterConfig(limit_factor=None))
    for op_id in ("get_accounts", "get_profiles"):  # 1/s, 15/m and 75/s, 750/m
        for _ in range(1000):
            (await limiter.acquire(ACCOUNT, get(op_id))).finish(200)
    assert clock.slept == []
    state = limiter.state(ACCOUNT, "get_accounts")
    assert state is not None
    assert (state.limit_factor, state.rate, state.daily_used) == (None, math.inf, 1000)


@pytest.mark.anyio
async def test_without_limits_a_429_still_pauses_for_retry_after_and_only_that() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock=clock, config=LimiterConfig(limit_factor=None))
    op = get("get_profiles")
    (await limiter.acquire(ACCOUNT, op)).finish(429, {"Retry-After": "7"})
    await limiter.acquire(ACCOUNT, op)
    assert clock.slept == [pytest.approx(7.0)]
    for _ in range(200):  # after the pause: no rate cut, no pacing
        (await limiter.acquire(ACCOUNT, op)).finish(200)
    assert clock.monotonic() == pytest.approx(7.0)
    (await limiter.acquire(ACCOUNT, op)).finish(429)  # no Retry-After: the config's pause
    await limiter.acquire(ACCOUNT, op)
    assert clock.monotonic() == pytest.approx(8.0)


@pytest.mark.anyio
async def test_without_limits_remaining_and_daily_caps_still_hold() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock=clock, config=LimiterConfig(limit_factor=None))
    op = get("get_profiles")
    (await limiter.acquire(ACCOUNT, op)).finish(
        200, {"RateLimit-Remaining": "1", "RateLimit-Reset": "20"}
    )
    (await limiter.acquire(ACCOUNT, op)).finish(200)
    assert clock.slept == []
    await limiter.acquire(ACCOUNT, op)  # the server's window is spent: wait for its reset
    assert clock.monotonic() == pytest.approx(20.0)
    capped = get("create_custom_metric")  # 15 a day
    for _ in range(15):
        (await limiter.acquire(ACCOUNT, capped)).finish(201)
    with pytest.raises(QuotaExhaustedError):
        await limiter.acquire(ACCOUNT, capped)


@pytest.mark.anyio
async def test_a_client_configured_without_limits_sends_everything_at_once() -> None:
    clock = ManualClock()
    server = Server(clock, respond=lambda _: jsonapi(200, {"data": []}))
    config = ClientConfig(limiter=LimiterConfig(limit_factor=None))
    async with client(server, config=config) as api:
        await asyncio.gather(*(api.request("get_accounts") for _ in range(40)))  # 1/s, 15/m
    assert server.times == [0.0] * 40


@pytest.mark.parametrize("factor", [0, -1, math.nan, math.inf])
def test_a_limit_factor_must_be_positive_and_finite(factor: float) -> None:
    with pytest.raises(ConfigurationError, match="limit_factor must be a positive number"):
        LimiterConfig(limit_factor=factor)


@pytest.mark.parametrize(
    ("text", "factor"),
    [("spec", 1.0), (" SPEC ", 1.0), ("off", None), ("Off", None), ("0.05", 0.05), ("2", 2.0)],
)
def test_parse_limit_factor_reads_spec_off_or_a_factor(text: str, factor: float | None) -> None:
    assert parse_limit_factor(text) == factor


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nonsense", "must be 'spec', 'off' or a positive factor such as 0.5, got 'nonsense'"),
        ("", "must be 'spec', 'off' or a positive factor"),
        ("0", "factor must be a positive number, got '0'"),
        ("-1", "factor must be a positive number, got '-1'"),
        ("inf", "factor must be a positive number"),
        ("nan", "factor must be a positive number"),
    ],
)
def test_parse_limit_factor_refuses_anything_else(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:  # a ValueError, as the CLIs catch it
        parse_limit_factor(text)
    assert str(caught.value).startswith(message)
    assert isinstance(caught.value, ValueError)


# -- sliding windows: Klaviyo's windows filled, at any alignment -----------------------


def _fixed_window_max(arrivals: list[float], length: float, offset: float) -> int:
    """The most arrivals in one fixed window ``[offset + k·length, offset + (k+1)·length)``."""
    counts: dict[int, int] = {}
    for t in arrivals:
        k = math.floor((t - offset) / length)
        counts[k] = counts.get(k, 0) + 1
    return max(counts.values(), default=0)


@settings(max_examples=60, deadline=None)
@given(
    limit=st.sampled_from(
        [RateLimit(3, 30), RateLimit(75, 750), RateLimit(1, 15), RateLimit(2, 3)]
    ),
    requests=st.lists(
        st.tuples(
            st.floats(0, 3, allow_nan=False),  # pause before the request
            st.floats(0, 2, allow_nan=False),  # its round trip
            st.floats(0, 1, allow_nan=False),  # where in it the server got it
            st.booleans(),  # whether its response is read before the next request goes
        ),
        min_size=1,
        max_size=150,
    ),
    burst_offset=st.floats(0, 1, exclude_max=True),
    steady_offset=st.floats(0, 60, exclude_max=True),
)
def test_fixed_windows_at_any_alignment_are_never_overrun(
    limit: RateLimit,
    requests: list[tuple[float, float, float, bool]],
    burst_offset: float,
    steady_offset: float,
) -> None:
    op = Operation(
        method="GET",
        path="/api/x",
        operation_id="x",
        tag="t",
        rate_limit=limit,
        scopes=(),
        success_status=200,
        revision="r",
    )
    jitter = LimiterConfig().jitter_allowance

    async def run() -> list[float]:
        clock = ManualClock()
        limiter = RateLimiter(clock=clock)
        arrivals: list[float] = []
        pending: list[tuple[float, Permit]] = []  # (response time, permit)
        for pause, trip, where, wait_for_it in requests:
            clock.advance(pause)
            for due, permit in sorted(pending, key=lambda p: p[0]):
                if due <= clock.monotonic():
                    permit.finish(200)
            pending = [(due, p) for due, p in pending if due > clock.monotonic()]
            permit = await limiter.acquire(ACCOUNT, op)
            sent = clock.monotonic()
            # Arrival lies within the round trip and within the jitter allowance of the
            # send (test_ratestore_late_arrivals.py lets it fall anywhere in the trip).
            arrivals.append(sent + where * min(trip, jitter))
            if wait_for_it:
                clock.advance(trip)
                permit.finish(200)
            else:
                pending.append((sent + trip, permit))
        return arrivals

    arrivals = asyncio.run(run())
    assert _fixed_window_max(arrivals, 1.0, burst_offset) <= limit.burst
    assert _fixed_window_max(arrivals, 60.0, steady_offset) <= limit.steady
    # and so at every alignment at once
    assert max_in_window(arrivals, 1.0) <= limit.burst
    assert max_in_window(arrivals, 60.0) <= limit.steady


@pytest.mark.anyio
async def test_a_short_run_goes_at_the_burst_limit_not_the_steady_rate() -> None:
    # The emulator's --rate-limits 0.04 on GET /api/profiles: 3/s, 30/min. 30 requests fit
    # in the windows in ~10 s; the old token bucket spread them over 61 s.
    clock = ManualClock()
    limiter = RateLimiter(clock=clock, config=LimiterConfig(limit_factor=0.04))
    op = get("get_profiles")
    sent = []
    for _ in range(30):
        (await limiter.acquire(ACCOUNT, op)).finish(200)
        sent.append(clock.monotonic())
    assert sent[-1] == pytest.approx(9.0)
    assert clock.monotonic() <= 10.0
    assert max_in_window(sent, 1.0) <= 3
    assert limiter.allowance(op, None, sent[-1]) == 30  # all the windows allowed
    # the 31st must wait for the first to leave the minute window
    await limiter.acquire(ACCOUNT, op)
    assert clock.monotonic() == pytest.approx(60.0)


@pytest.mark.anyio
async def test_a_request_in_flight_counts_until_its_answer_however_late() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock=clock)
    op = get("get_accounts")  # 1/s, 15/m
    stalled = await limiter.acquire(ACCOUNT, op)

    async def answer_at(when: float) -> None:
        while clock.monotonic() < when:  # noqa: ASYNC110 (the waiter's polls move the clock)
            await asyncio.sleep(0)
        stalled.finish(200)  # after 3 s: it may have reached the server at 2.9 s

    answering = asyncio.create_task(answer_at(3.0))
    await limiter.acquire(ACCOUNT, op)
    await answering
    # not at 1.25 (send + jitter): a second after the answer, the latest it can have arrived
    assert 4.0 <= clock.monotonic() <= 4.0 + 0.05 + 1e-6
    answered = await limiter.acquire(ACCOUNT, op)
    went = clock.monotonic()
    clock.advance(0.1)
    answered.finish(200)  # it cannot have arrived after its answer
    await limiter.acquire(ACCOUNT, op)
    assert clock.monotonic() == pytest.approx(went + 1.1)


@pytest.mark.anyio
async def test_an_unpredicted_429_falls_back_to_the_token_bucket_and_says_so() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock=clock, config=LimiterConfig(limit_factor=0.04))
    op = get("get_profiles")
    (await limiter.acquire(ACCOUNT, op)).finish(200)
    assert limiter.fallbacks == ()
    state = limiter.state(ACCOUNT, "get_profiles")
    assert state is not None
    assert state.mode == "windows"
    (await limiter.acquire(ACCOUNT, op)).finish(429, {"Retry-After": "2"})
    assert limiter.fallbacks == ("get_profiles",)
    state = limiter.state(ACCOUNT, "get_profiles")
    assert state is not None
    assert state.mode == "token-bucket"
    assert state.rate_factor == 1.0  # the windows drew it, not the bucket: no cut
    sent = []
    for _ in range(5):
        (await limiter.acquire(ACCOUNT, op)).finish(200)
        sent.append(clock.monotonic())
    assert sent[0] >= 2.0  # after Retry-After
    # then at the token bucket's rate, under a leaky bucket's drain of 30/60 a second
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert min(gaps) == pytest.approx(1 / (0.95 * 30 / 60))
    rate, capacity = pacing(RateLimit(3, 30), 0.95, 0.25)
    assert limiter.allowance(op, None, 60.0) == math.floor(capacity + 60 * rate)


@pytest.mark.parametrize(
    ("seconds", "allowed"),
    [(0.0, 3), (0.5, 3), (1.0, 6), (9.0, 30), (59.9, 30), (60.0, 33), (69.0, 60), (125, 78)],
)
def test_window_allowance_counts_what_the_sliding_windows_let_through(
    seconds: float, allowed: int
) -> None:
    assert window_allowance(RateLimit(3, 30), seconds) == allowed


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(1, 8),
    length=st.sampled_from([1.0, 60.0]),
    requests=st.lists(
        st.tuples(st.floats(0, 0.7), st.floats(0, 1), st.booleans()), min_size=0, max_size=40
    ),
    now_after=st.floats(0, 2),
)
def test_the_window_wait_matches_counting_every_request(
    limit: int,
    length: float,
    requests: list[tuple[float, float, bool]],
    now_after: float,
) -> None:
    from kbridge.api.ratestore import InProcessBudget, _Stamp

    config = LimiterConfig()
    bucket = InProcessBudget()
    sent = 0.0
    for gap, where, done in requests:
        sent += gap
        stamp = _Stamp(sent, sent + where * config.jitter_allowance)
        stamp.done = done
        bucket.stamps.append(stamp)
    now = sent + now_after
    wait, _ = bucket._window_wait(now, length, limit, config.jitter_allowance)
    # by brute force: the limit-th latest arrival still in the window must leave it
    span = length + 1e-6
    inside = sorted((s.arrived for s in bucket.stamps if s.arrived > now - span), reverse=True)
    expected = 0.0 if len(inside) < limit else inside[limit - 1] + span - now
    assert wait == pytest.approx(expected, abs=1e-9)


@pytest.mark.anyio
async def test_a_daily_cap_429_is_no_reason_to_leave_the_windows() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock=clock)
    op = get("get_profiles")
    (await limiter.acquire(ACCOUNT, op)).finish(429, {"Retry-After": "3600"})
    assert limiter.fallbacks == ()
    await limiter.acquire(ACCOUNT, op)
    assert clock.monotonic() == pytest.approx(3600.0)  # still waits it out


@pytest.mark.anyio
async def test_limiters_given_one_store_share_the_accounts_windows_and_daily_count() -> None:
    from kbridge.api.ratestore import InProcessRateBudgetStore

    clock = ManualClock()
    config = LimiterConfig(limit_factor=0.04, daily_caps={"get_profiles": 5})
    store = InProcessRateBudgetStore()
    first = RateLimiter(clock=clock, config=config, store=store)
    second = RateLimiter(clock=clock, config=config, store=store)
    alone = RateLimiter(clock=clock, config=config)
    op = get("get_profiles")
    for _ in range(3):  # the 3/s burst
        assert (await first.acquire(ACCOUNT, op)).waited == 0
    assert (await alone.acquire(ACCOUNT, op)).waited == 0  # a budget of its own
    assert (await second.acquire(ACCOUNT, op)).waited > 0  # the shared burst is spent
    await second.acquire(ACCOUNT, op)
    with pytest.raises(QuotaExhaustedError):  # 5 a day between the two of them
        await first.acquire(ACCOUNT, op)


@pytest.mark.anyio
async def test_a_bucket_that_fell_back_still_counts_in_the_shared_windows() -> None:
    from kbridge.api.ratestore import InProcessRateBudgetStore

    clock = ManualClock()
    config = LimiterConfig(limit_factor=0.04)  # get_profiles at 3/s
    store = InProcessRateBudgetStore()
    first = RateLimiter(clock=clock, config=config, store=store)
    second = RateLimiter(clock=clock, config=config, store=store)
    op = get("get_profiles")
    (await first.acquire(ACCOUNT, op)).finish(429, {"Retry-After": "1"})
    assert first.fallbacks == ("get_profiles",)
    await clock.sleep(5)
    (await first.acquire(ACCOUNT, op)).finish(200)  # token bucket now, yet in the windows
    for _ in range(2):
        permit = await second.acquire(ACCOUNT, op)
        assert permit.waited == 0
        permit.finish(200)
    assert (await second.acquire(ACCOUNT, op)).waited > 0  # the burst of 3 is spent between us
