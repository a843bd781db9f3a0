"""The live sync display: no 1,115 % before a share means anything; finished rows stop."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from kbridge.api.ratelimit import RateLimiter
from kbridge.cli.sync import MIN_BUDGET_SECONDS, NOT_YET, StreamProgress, budget_text
from kbridge.core.clock import ManualClock
from kbridge.sync import StreamResult

pytestmark = pytest.mark.unit


class Time:
    """The display's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _limiter() -> RateLimiter:
    return RateLimiter(clock=ManualClock())


def test_a_share_of_the_ceiling_waits_until_it_means_something() -> None:
    limiter = _limiter()
    fast = 50_000.0  # a first burst of pages: many times the steady ceiling
    assert budget_text("profiles", fast, limiter, elapsed=0.5) == NOT_YET
    assert budget_text("profiles", fast, limiter, elapsed=MIN_BUDGET_SECONDS - 0.1) == NOT_YET
    settled = budget_text("profiles", 100.0, limiter, elapsed=MIN_BUDGET_SECONDS)
    assert settled.endswith("% of ceiling")
    assert budget_text("campaign_values_daily", 1.0, limiter, elapsed=60) == ""  # no pages


def _row(progress: StreamProgress, stream: str) -> dict[str, object]:
    task = next(t for t in progress.progress.tasks if t.description == stream)
    return {
        "finished": task.finished,
        "elapsed": task.finished_time if task.finished else task.elapsed,
        "budget": task.fields["budget"],
        "completed": task.completed,
    }


def test_the_live_rows_show_a_dash_first_then_a_share_and_stop_when_done() -> None:
    time = Time()
    live = StreamProgress.create(Console(file=io.StringIO(), width=120), _limiter(), get_time=time)
    with live.progress:
        live.on_progress("profiles", 100)
        time.now += 1
        live.on_progress("profiles", 1000)
        assert _row(live, "profiles")["budget"] == NOT_YET  # 1 s in: a burst, not a rate
        live.on_progress("lists", 10)
        for _ in range(20):
            time.now += 1
            live.on_progress("profiles", 100)
        assert str(_row(live, "profiles")["budget"]).endswith("% of ceiling")

        live.on_stream_done(StreamResult("lists", records=10))
        stopped = _row(live, "lists")
        time.now += 30
        assert stopped["finished"] is True
        assert _row(live, "lists")["elapsed"] == stopped["elapsed"]  # the timer stopped
        assert _row(live, "lists")["completed"] == 10
        assert _row(live, "profiles")["finished"] is False  # still running

        live.on_stream_done(StreamResult("profiles", exception=RuntimeError("503")))
        assert _row(live, "profiles")["finished"] is True
        assert _row(live, "profiles")["budget"] == "failed"
