"""Privacy requests: the legal clock and how a request's state follows its job.

A request is received, its job (``privacy_access`` or ``privacy_delete``)
queued in the same transaction; from then on its state is read from that
job and from the privacy audit entries the job writes (subjects only by
keyed hash): ``received`` → ``requested`` (Klaviyo accepted the deletion)
→ ``confirmed`` (the profiles are gone, or the access report was made), or
``failed`` / ``cancelled``. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

__all__ = [
    "REGULATION_DAYS",
    "PrivacyRequestView",
    "RequestProgress",
    "due_date",
    "progress_of",
]

#: days to answer a data subject: GDPR art. 12(3) one month (taken as 30 days),
#: CCPA §1798.130(a)(2) 45 days
REGULATION_DAYS: Mapping[str, int] = {"gdpr": 30, "ccpa": 45}
#: audit outcomes that end a request well (``not_found``: nothing of theirs was there)
_DONE = frozenset({"confirmed", "not_found", "reported"})
_WAITING = frozenset({"requested", "pending"})
_REFUSED = frozenset({"refused", "failed"})


def due_date(received_at: datetime, regulation: str) -> datetime:
    """When the answer is due under ``regulation`` (``gdpr`` or ``ccpa``)."""
    return received_at + timedelta(days=REGULATION_DAYS[regulation])


@dataclass(frozen=True, kw_only=True, slots=True)
class PrivacyRequestView:
    id: str
    workspace_id: str
    connection_id: str | None
    #: ``access`` or ``delete``
    action: str
    regulation: str
    #: ``email`` or ``phone``
    subject_type: str | None
    subject_hash: str
    state: str
    job_id: str | None
    job_state: str | None
    batch_id: str | None
    detail: str | None
    received_at: datetime
    due_at: datetime | None
    requested_at: datetime | None
    confirmed_at: datetime | None


@dataclass(frozen=True, slots=True)
class RequestProgress:
    """Where a request stands, as read from its job and audit entries."""

    state: str
    requested_at: datetime | None = None
    confirmed_at: datetime | None = None
    batch_id: str | None = None
    detail: str | None = None


def _time(value: object) -> datetime | None:
    return None if not value else datetime.fromisoformat(str(value))


def progress_of(
    *,
    job_state: str | None,
    job_error: str | None,
    job_finished_at: datetime | None,
    entries: Sequence[tuple[datetime, Mapping[str, Any]]],
) -> RequestProgress:
    """The state of a request whose job is in ``job_state`` and whose subject's audit
    entries by that job are ``entries`` (``(at, detail)``, oldest first)."""
    requested_at = next(
        (_time(d.get("requested_at")) for _, d in entries if d.get("requested_at")), None
    )
    batch = next((d.get("batch_id") for _, d in reversed(entries) if d.get("batch_id")), None)
    if job_state == "cancelled":
        return RequestProgress("cancelled", requested_at, None, batch, "its job was cancelled")
    if job_state == "failed":
        return RequestProgress("failed", requested_at, None, batch, job_error)
    if entries:
        at, latest = entries[-1]
        outcome = str(latest.get("outcome", ""))
        if outcome in _DONE:
            confirmed = _time(latest.get("confirmed_at")) or at
            return RequestProgress("confirmed", requested_at or at, confirmed, batch, None)
        if outcome in _WAITING:
            return RequestProgress("requested", requested_at or at, None, batch, None)
        if outcome in _REFUSED:
            why = latest.get("detail") or f"Klaviyo's answer: {outcome}"
            return RequestProgress("failed", requested_at, None, batch, str(why))
    if job_state == "succeeded":  # a job that wrote no entry for the subject still finished
        return RequestProgress("confirmed", requested_at, job_finished_at, batch, None)
    return RequestProgress("received", requested_at, None, batch, None)
