"""Data-subject access: everything the account holds about a person, one report each.

For each subject: every matching profile (see :mod:`kbridge.privacy.lookup`)
with its attributes, consent state (``subscriptions``), the lists and segments
it belongs to and, when asked, its event history. Reports are plain data
(:meth:`SubjectReport.to_dict` for JSON, :func:`report_rows` for CSV); the
CLI renders them for people. Each report is recorded in the audit log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from kbridge.api import ApiError, AsyncClient, AuthenticationError, PermissionDeniedError, Resource
from kbridge.api.capabilities import PRIVACY_ACCESS
from kbridge.api.filter_builder import F
from kbridge.core import Clock, SystemClock
from kbridge.privacy.audit import AuditLog
from kbridge.privacy.batch import DEFAULT_CONCURRENCY, run_each
from kbridge.privacy.lookup import find_profiles
from kbridge.privacy.subjects import Subject, batch_id, subject_hash

__all__ = [
    "CSV_COLUMNS",
    "ProfileReport",
    "SubjectReport",
    "access_report",
    "access_reports",
    "report_rows",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class ProfileReport:
    """One profile of a subject: its data, memberships, consent and (optionally) events."""

    id: str
    attributes: Mapping[str, Any]
    consent: Mapping[str, Any] | None
    lists: tuple[Mapping[str, Any], ...]
    segments: tuple[Mapping[str, Any], ...]
    events: tuple[Mapping[str, Any], ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        out: dict[str, Any] = {
            "id": self.id,
            "attributes": dict(self.attributes),
            "consent": None if self.consent is None else dict(self.consent),
            "lists": [dict(m) for m in self.lists],
            "segments": [dict(m) for m in self.segments],
        }
        if self.events is not None:
            out["events"] = [dict(e) for e in self.events]
        return out


@dataclass(frozen=True, kw_only=True, slots=True)
class SubjectReport:
    """What the account holds about one subject (``error`` set when it could not be read)."""

    subject: Subject
    subject_hash: str
    profiles: tuple[ProfileReport, ...] = ()
    error: str | None = None
    status: str = "reported"
    audit_ids: tuple[int, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; ``status`` is ``reported`` or ``failed``."""
        return {
            "subject": self.subject.label,
            "email": self.subject.email,
            "phone_number": self.subject.phone_number,
            "subject_hash": self.subject_hash,
            "status": self.status,
            "error": self.error,
            "profile_ids": [p.id for p in self.profiles],
            "profiles": [p.to_dict() for p in self.profiles],
        }


def _membership(resource: Resource) -> dict[str, Any]:
    return {"id": resource.id, "name": resource.attributes.get("name")}


def _event(resource: Resource) -> dict[str, Any]:
    metric = resource.relationships.get("metric")
    metric_data = metric.get("data") if isinstance(metric, Mapping) else None
    return {
        "id": resource.id,
        "datetime": resource.attributes.get("datetime"),
        "metric_id": metric_data.get("id") if isinstance(metric_data, Mapping) else None,
        "properties": resource.attributes.get("event_properties"),
    }


async def _profile_report(client: AsyncClient, profile: Resource, events: bool) -> ProfileReport:
    pid = profile.id or ""
    attrs = dict(profile.attributes)
    consent = attrs.pop("subscriptions", None)
    # Membership reads are their own operations (Klaviyo's small tier); the profile's
    # ``include=lists`` costs more (1/s, 15/min) and gives no more.
    lists = [
        _membership(r)
        async for r in client.paginate("get_lists_for_profile", path_params={"id": pid})
    ]
    segments = [
        _membership(r)
        async for r in client.paginate("get_segments_for_profile", path_params={"id": pid})
    ]
    history: list[dict[str, Any]] | None = None
    if events:
        history = [
            _event(r)
            async for r in client.events.iter_events(
                filter=F.equals("profile_id", pid), sort="datetime"
            )
        ]
    return ProfileReport(
        id=pid,
        attributes=attrs,
        consent=consent if isinstance(consent, Mapping) else None,
        lists=tuple(lists),
        segments=tuple(segments),
        events=None if history is None else tuple(history),
    )


@PRIVACY_ACCESS.runs
async def access_report(
    client: AsyncClient,
    subject: Subject,
    *,
    key: bytes,
    events: bool = False,
) -> SubjectReport:
    """The report for one subject; API failures become ``status="failed"`` with ``error``."""
    hashed = subject_hash(key, subject)
    try:
        profiles = await find_profiles(client, subject, consent=True)
        reports = [await _profile_report(client, p, events) for p in profiles]
    except ApiError as exc:
        if isinstance(exc, AuthenticationError | PermissionDeniedError):
            raise  # every other subject would fail the same way: stop the batch
        return SubjectReport(subject=subject, subject_hash=hashed, error=str(exc), status="failed")
    return SubjectReport(subject=subject, subject_hash=hashed, profiles=tuple(reports))


@PRIVACY_ACCESS.runs
async def access_reports(
    client: AsyncClient,
    subjects: Sequence[Subject],
    *,
    audit: AuditLog,
    events: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_done: Callable[[SubjectReport], None] | None = None,
    clock: Clock | None = None,
) -> list[SubjectReport]:
    """One report per subject (concurrently, in input order), each recorded in ``audit``.

    Access is read-only, so a batch run again reads every subject again: a
    report is only useful whole and current.
    """
    # the log may be a file (the connection store): its I/O stays off the event loop
    key = await asyncio.to_thread(audit.audit_key)
    now = (clock or SystemClock()).now
    batch = batch_id("access", (subject_hash(key, s) for s in subjects))

    async def one(subject: Subject) -> SubjectReport:
        requested = now()
        report = await access_report(client, subject, key=key, events=events)
        entry = await asyncio.to_thread(
            partial(
                audit.append_audit,
                subject_hash=report.subject_hash,
                action="access",
                outcome=report.status,
                batch_id=batch,
                requested_at=requested,
                confirmed_at=now() if report.error is None else None,
                profile_ids=[p.id for p in report.profiles],
                detail=report.error,
            )
        )
        return SubjectReport(
            subject=report.subject,
            subject_hash=report.subject_hash,
            profiles=report.profiles,
            error=report.error,
            status=report.status,
            audit_ids=(entry,),
        )

    return await run_each(subjects, one, concurrency=concurrency, on_done=on_done)


#: the flat CSV form of access reports: one row per subject and profile
CSV_COLUMNS = (
    "subject",
    "status",
    "profile_id",
    "email",
    "phone_number",
    "external_id",
    "first_name",
    "last_name",
    "email_consent",
    "sms_consent",
    "lists",
    "segments",
    "events",
)


def _consent(consent: Mapping[str, Any] | None, channel: str) -> str | None:
    if consent is None:
        return None
    marketing = (consent.get(channel) or {}).get("marketing") or {}
    value = marketing.get("consent")
    return None if value is None else str(value)


def report_rows(reports: Sequence[SubjectReport]) -> list[dict[str, Any]]:
    """Reports as flat rows (:data:`CSV_COLUMNS`); a subject with no profile has one row."""
    rows: list[dict[str, Any]] = []
    for report in reports:
        base = {"subject": report.subject.label, "status": report.status}
        if not report.profiles:
            rows.append({c: base.get(c) for c in CSV_COLUMNS})
            continue
        for p in report.profiles:
            a = p.attributes
            rows.append(
                {
                    **base,
                    "profile_id": p.id,
                    "email": a.get("email"),
                    "phone_number": a.get("phone_number"),
                    "external_id": a.get("external_id"),
                    "first_name": a.get("first_name"),
                    "last_name": a.get("last_name"),
                    "email_consent": _consent(p.consent, "email"),
                    "sms_consent": _consent(p.consent, "sms"),
                    "lists": ";".join(str(m["name"] or m["id"]) for m in p.lists),
                    "segments": ";".join(str(m["name"] or m["id"]) for m in p.segments),
                    "events": None if p.events is None else len(p.events),
                }
            )
    return rows
