"""How a job's failure is judged: one line, and whether another attempt can help."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kbridge.api.errors import ApiError, error_from_response
from kbridge.core import ConfigurationError
from kbridge.service.jobs import (
    Failure,
    Postpone,
    WorkerSettings,
    backoff,
    classify,
    wait_for_held_warehouse,
)
from kbridge.service.views import JobView
from kbridge.sync import SyncError
from kbridge.sync.results import StreamResult, SyncResult
from kbridge.warehouse import DestinationLockedError

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _api(status: int, detail: str = "nope", headers: dict[str, str] | None = None) -> ApiError:
    body = b'{"errors": [{"status": %d, "code": "x", "detail": "%s"}]}' % (status, detail.encode())
    return error_from_response(status, headers or {}, body, operation_id="get_profiles")


def test_a_refused_key_stops_at_once_and_says_what_to_do() -> None:
    verdict = classify(_api(401, "key pk_abcdef123456 is bad"), kind="sync", connection="shop")
    assert not verdict.retry
    assert "connect it again" in verdict.line
    assert "'shop'" in verdict.line
    assert "pk_abc" not in verdict.line


def test_a_missing_scope_stops_at_once_naming_the_capability() -> None:
    verdict = classify(_api(403), kind="sync")
    assert not verdict.retry
    assert "sync" in verdict.line
    assert "\n" not in verdict.line


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retried(status: int) -> None:
    assert classify(_api(status), kind="sync").retry


def test_a_429_waits_at_least_what_klaviyo_asked() -> None:
    verdict = classify(_api(429, headers={"Retry-After": "42"}), kind="sync")
    assert verdict.retry
    assert verdict.retry_after == timedelta(seconds=42)


def test_bad_parameters_stop_at_once() -> None:
    verdict = classify(ConfigurationError("params.start_date: no"), kind="sync")
    assert verdict == verdict.__class__("params.start_date: no", retry=False)


def test_a_sync_with_a_refused_stream_is_judged_by_its_worst_stream() -> None:
    result = SyncResult(
        account_id="A",
        streams={
            "profiles": StreamResult("profiles", exception=_api(503)),
            "events": StreamResult("events", exception=_api(403)),
        },
    )
    assert not classify(SyncError("2 streams failed", result), kind="sync").retry
    only_transient = SyncResult(
        account_id="A",
        streams={"profiles": StreamResult("profiles", exception=_api(503))},
    )
    assert classify(SyncError("1 stream failed", only_transient), kind="sync").retry


def test_an_unforeseen_error_is_retried_as_one_line() -> None:
    verdict = classify(RuntimeError("disk\nfull"), kind="sync")
    assert verdict.retry
    assert verdict.line == "RuntimeError: disk full"


def test_backoff_doubles_up_to_its_ceiling(tmp_path: Path) -> None:
    settings = WorkerSettings(
        data_dir=tmp_path,
        master_key=b"k" * 32,
        retry_backoff=timedelta(seconds=30),
        max_backoff=timedelta(minutes=2),
    )
    waits = [backoff(settings, attempt) for attempt in (1, 2, 3, 4, 5)]
    assert waits == [timedelta(seconds=s) for s in (30, 60, 120, 120, 120)]
    assert "k" * 32 not in repr(settings)


def _queued_at(created_at: datetime) -> JobView:
    return JobView(
        id="j1", workspace_id="w1", connection_id="c1", kind="sync", params={}, state="running",
        attempts=1, max_attempts=3, progress=None, last_error=None, result=None,
        cancel_requested=False, lease_owner="me", lease_expires_at=None, run_after=created_at,
        created_at=created_at, started_at=created_at, finished_at=None,
    )  # fmt: skip


def test_a_held_warehouse_is_waited_for_backing_off_then_given_up_with_one_line() -> None:
    settings = WorkerSettings(data_dir=Path("/tmp/none"), master_key=b"k" * 32)
    held = DestinationLockedError("/data/shop.duckdb", "PID 4242")

    first = wait_for_held_warehouse(held, _queued_at(NOW), settings, NOW)
    later = wait_for_held_warehouse(held, _queued_at(NOW - timedelta(hours=2)), settings, NOW)
    ended = wait_for_held_warehouse(
        held, _queued_at(NOW - settings.warehouse_wait_for), settings, NOW
    )

    assert isinstance(first, Postpone)
    assert first.shown
    assert first.delay == settings.busy_retry
    assert first.reason.startswith("waiting: ")
    assert "'/data/shop.duckdb'" in first.reason
    assert "PID 4242" in first.reason
    assert isinstance(later, Postpone)
    assert later.delay == settings.warehouse_retry_max  # backed off, within its bound
    assert isinstance(ended, Failure)
    assert not ended.retry
    assert "/data/shop.duckdb" in ended.line
    assert "\n" not in ended.line
