"""How a privacy request's state follows its job and the audit entries the job writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kbridge.service.privacy_requests import due_date, progress_of

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def test_the_legal_clock_is_30_days_under_gdpr_and_45_under_ccpa() -> None:
    assert due_date(T0, "gdpr") == T0 + timedelta(days=30)
    assert due_date(T0, "ccpa") == T0 + timedelta(days=45)


def test_queued_with_no_entry_is_received() -> None:
    found = progress_of(job_state="queued", job_error=None, job_finished_at=None, entries=[])
    assert found.state == "received"


def test_a_deletion_requested_then_pending_then_confirmed() -> None:
    asked = {"outcome": "requested", "batch_id": "b1", "requested_at": T0.isoformat()}
    later = T0 + timedelta(minutes=5)
    pending = progress_of(
        job_state="queued",
        job_error=None,
        job_finished_at=None,
        entries=[(T0, asked), (later, {"outcome": "pending", "batch_id": "b1"})],
    )
    assert (pending.state, pending.requested_at, pending.batch_id) == ("requested", T0, "b1")
    done = progress_of(
        job_state="succeeded",
        job_error=None,
        job_finished_at=later,
        entries=[(T0, asked), (later, {"outcome": "confirmed", "confirmed_at": later.isoformat()})],
    )
    assert (done.state, done.requested_at, done.confirmed_at) == ("confirmed", T0, later)


def test_a_guard_refusal_fails_the_request_with_its_reason_though_the_job_succeeded() -> None:
    refused = {"outcome": "refused", "detail": "2 profiles match: ambiguous"}
    found = progress_of(
        job_state="succeeded", job_error=None, job_finished_at=T0, entries=[(T0, refused)]
    )
    assert (found.state, found.detail) == ("failed", "2 profiles match: ambiguous")


@pytest.mark.parametrize(("job_state", "state"), [("failed", "failed"), ("cancelled", "cancelled")])
def test_a_failed_or_cancelled_job_decides_whatever_the_entries_say(
    job_state: str, state: str
) -> None:
    found = progress_of(
        job_state=job_state,
        job_error="Klaviyo refused the key",
        job_finished_at=T0,
        entries=[(T0, {"outcome": "requested"})],
    )
    assert found.state == state
    if state == "failed":
        assert found.detail == "Klaviyo refused the key"
